#!/usr/bin/env bash
# Debian packages the tests, demo and benchmarks need. Idempotent: installs only what is missing.
# Called by the Makefile's install step and by .ci/run; safe to run again.
set -euo pipefail
PACKAGES=(
  # one package per line, with what needs it
  hashdeep  # tests/test_formats_forensic.py: real hashdeep and md5deep -z output as samples
  chromium            # report PDF export (opspoor report pdf) and the report's browser tests
  fonts-dejavu-core   # a font for headless Chromium to render the report and PDF with
  poppler-utils       # pdftoppm: the report tests check the PDF's page is not blank
  tesseract-ocr       # location clues: OCR of text in new pictures (opspoor/clues/ocr.py)
  tesseract-ocr-eng   # location clues: English OCR model
  tesseract-ocr-nld   # location clues: Dutch OCR model
  tesseract-ocr-deu   # location clues: German OCR model
  tesseract-ocr-fra   # location clues: French OCR model (bench/clues.py: 5 languages)
  tesseract-ocr-spa   # location clues: Spanish OCR model (bench/clues.py: 5 languages)
  tesseract-ocr-osd   # location clues: script and orientation detection
  libtesseract-dev    # location clues: headers the tesserocr binding is built against
  pkg-config          # location clues: tesserocr's build finds Tesseract through it
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps: missing Debian packages: ${missing[*]} (run this script as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

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
  # test, demo and benchmark disk images (opspoor.demo.disks), built without root or mounting:
  dosfstools          # mkfs.fat: FAT file systems
  mtools              # mcopy, mmd, mdel: files into FAT images, and deleted entries
  e2fsprogs           # mke2fs -d: ext4 file systems populated from a folder
  ntfs-3g             # mkntfs, ntfscp: NTFS file systems with files in them
  exfatprogs          # mkfs.exfat: exFAT file systems (files written by opspoor.demo.disks, no mount)
  xorriso             # ISO 9660 images, and HFS+ in a hybrid ISO (Debian 12 has no hfsprogs)
  fdisk               # sfdisk: MBR and GPT partition tables on an image file
  ewf-tools           # ewfacquire: E01 (split segments, stored MD5) from a raw image
  qemu-utils          # qemu-img convert: VMDK, QCOW2, VHD, VHDX
  sleuthkit           # fls, icat: an independent look at a test image when a disk test fails
  tesseract-ocr       # location clues: OCR of text in new pictures (opspoor/clues/ocr.py)
  tesseract-ocr-eng   # location clues: English OCR model
  tesseract-ocr-nld   # location clues: Dutch OCR model
  tesseract-ocr-deu   # location clues: German OCR model
  tesseract-ocr-fra   # location clues: French OCR model (bench/clues.py: 5 languages)
  tesseract-ocr-spa   # location clues: Spanish OCR model (bench/clues.py: 5 languages)
  tesseract-ocr-osd   # location clues: script and orientation detection
  libtesseract-dev    # location clues: headers the tesserocr binding is built against
  pkg-config          # location clues: tesserocr's build finds Tesseract through it
  rtsp-server-perl    # live streams: an RTSP server that watch connects to as a client (tests/test_live.py)
  srt-tools           # live streams: srt-live-transmit, watch's SRT relay (PyAV has no libsrt) and the tests' SRT sender
  libnginx-mod-rtmp   # live streams: an RTMP server (nginx, run by the test with its own config) watch plays from;
                      #   pulls in nginx, whose system service the tests do not use (systemctl disable --now nginx)
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

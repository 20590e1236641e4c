"""store box of opspoor (see DESIGN.md)."""

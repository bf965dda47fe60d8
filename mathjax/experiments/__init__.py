"""End-to-end experiments built from the library (the laptop demo, data scaling)."""

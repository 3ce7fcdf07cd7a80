"""studyrunner: validated, reproducible CT imaging-biomarker studies from a protocol YAML."""

__version__ = "0.1.0"

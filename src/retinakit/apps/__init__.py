"""Jobs built on the detector: alignment crops and detection over files (more: tracking, anonymization,
batch engines, the HTTP service). Each imports its optional heavy dependency inside the function that needs it.
"""

"""streampose: real-time and offline 3D human pose from ordinary video."""
__version__ = "0.1.0"

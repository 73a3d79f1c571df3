"""An entry point that fails the way a student's often does."""
import os

files = os.listdir(os.environ.get("SM_CHANNEL_TRAINING"))
raise ValueError(f"could not parse {len(files)} files")

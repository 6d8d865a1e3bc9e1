"""The model lab: training, conversion, evaluation and calibration of the model that model/ ships.

Each tool runs as a module from the repository's root (``python -m lab.train --help``). Importing this package
imports nothing else: TensorFlow, Keras and torch are imported by the functions that need them, so the light
modules (``lab.scoring``, ``lab.labels``) serve the command line too.
"""

"""The book's chapter-8 handler logic, re-implemented for comparison (run on tflite-runtime 2.14, numpy 1.x,
keras-image-helper 0.0.1): from_url, set_tensor, invoke, get_tensor, a dict of floats."""

import json
import os

import tflite_runtime.interpreter as tflite
from keras_image_helper import create_preprocessor

from lab.labels import CLOTHING_LABELS

MODEL = os.environ["BOOK_MODEL"]
SIZE = int(os.environ.get("BOOK_SIZE", "299"))
CLASSES = list(CLOTHING_LABELS)

interpreter = tflite.Interpreter(model_path=MODEL)
interpreter.allocate_tensors()
input_index = interpreter.get_input_details()[0]["index"]
output_index = interpreter.get_output_details()[0]["index"]
preprocessor = create_preprocessor("xception", target_size=(SIZE, SIZE))


def predict(url):
    X = preprocessor.from_url(url)
    interpreter.set_tensor(input_index, X)
    interpreter.invoke()
    preds = interpreter.get_tensor(output_index)
    return dict(zip(CLASSES, preds[0].tolist(), strict=False))


def lambda_handler(event, context):
    return predict(event["url"])


if __name__ == "__main__":
    print(json.dumps(lambda_handler({"url": os.environ["BOOK_URL"]}, None)))

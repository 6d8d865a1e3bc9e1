# The backfill on Azure: a Container Apps job's image (docs/backfill.md). Each replica runs
# azure/backfill_replica.py, which claims shards of a container's listing and classifies them with the same core/
# and model as the function.
#   az acr build --registry REGISTRY --image clothing-backfill:1 --file azure/backfill.Dockerfile .
# Built from the repository's root, so core/ and model/ are copied from their one source, not from a bundle.
FROM python:3.12-slim

WORKDIR /app
# The runtime requirements first: the layer is rebuilt only when they change, not on every code change.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt azure-storage-blob==12.31.1

COPY core/ ./core/
COPY model/clothing-model.tflite model/clothing-model.json model/clothing-model-novelty.npz model/imagenet-gate.tflite ./model/
COPY azure/backfill_replica.py ./backfill_replica.py

# Unprivileged: the job reads and writes blobs only, through the connection string it is given.
RUN useradd --uid 10001 --no-create-home backfill
USER backfill
ENV PYTHONUNBUFFERED=1
CMD ["python", "backfill_replica.py"]

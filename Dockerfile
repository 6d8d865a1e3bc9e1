# The book's container-image route: AWS Lambda's Python 3.12 base image (Amazon Linux 2023).
#   docker build -t clothing-classifier .
#   docker run -p 8080:8080 clothing-classifier
#   curl -XPOST localhost:8080/2015-03-31/functions/function/invocations -d '{"url": "https://..."}'
# Deploy through ECR with serverless-container.yml (docs/deploy/aws.md, "Container image").
FROM public.ecr.aws/lambda/python:3.12

COPY requirements.txt ${LAMBDA_TASK_ROOT}/
RUN pip install --no-cache-dir -r ${LAMBDA_TASK_ROOT}/requirements.txt

COPY core/ ${LAMBDA_TASK_ROOT}/core/
COPY handlers/ ${LAMBDA_TASK_ROOT}/handlers/
COPY model/clothing-model.tflite model/clothing-model.json model/clothing-model-novelty.npz ${LAMBDA_TASK_ROOT}/model/
COPY model/imagenet-gate.tflite ${LAMBDA_TASK_ROOT}/model/

CMD ["handlers.aws.lambda_handler"]

"""A query parameter given twice (``?top_k=1&top_k=5``) is one answer on every door: a 400 naming it. Each door is
fed the request as its platform delivers it: API Gateway's REST API keeps every value in
``multiValueQueryStringParameters`` (and the last in ``queryStringParameters``), the HTTP API and Function URLs
join them with a comma, an ALB in multi-value mode lists them, functions-framework's server parses the raw query
string, and the Azure Functions host joins them with a comma before the worker sees them."""

import base64
import json
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from tests.helpers import SAMPLE

PHOTO = base64.b64encode(SAMPLE.read_bytes()).decode()
CONTEXT = SimpleNamespace(aws_request_id="repeated-query")


def rest_api():
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": {"Content-Type": "image/jpeg"},
        "queryStringParameters": {"top_k": "5"},
        "multiValueQueryStringParameters": {"top_k": ["1", "5"]},
        "requestContext": {"resourcePath": "/predict", "httpMethod": "POST", "stage": "dev"},
        "body": PHOTO,
        "isBase64Encoded": True,
    }


def http_api(domain):
    return {
        "version": "2.0",
        "rawPath": "/predict",
        "rawQueryString": "top_k=1&top_k=5",
        "queryStringParameters": {"top_k": "1,5"},
        "headers": {"content-type": "image/jpeg"},
        "requestContext": {"domainName": domain, "http": {"method": "POST", "path": "/predict"}},
        "body": PHOTO,
        "isBase64Encoded": True,
    }


def alb_multi_value():
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/c/1"}},
        "httpMethod": "POST",
        "path": "/predict",
        "multiValueHeaders": {"content-type": ["image/jpeg"]},
        "multiValueQueryStringParameters": {"top_k": ["1", "5"]},
        "body": PHOTO,
        "isBase64Encoded": True,
    }


@pytest.mark.parametrize(
    "event",
    [rest_api(), http_api("abc.execute-api.us-east-1.amazonaws.com"), http_api("abc.lambda-url.us-east-1.on.aws")]
    + [alb_multi_value()],
    ids=["rest api", "http api", "function url", "alb multi-value"],
)
def test_lambda_front_doors(handler, event):
    answer = handler(event, CONTEXT)
    error = json.loads(answer["body"])["error"]
    assert answer["statusCode"] == 400 and "top_k" in error["message"], error


def test_cloud_functions_server(gcp_server):
    url = gcp_server()[0] + "?top_k=1&top_k=5"
    request = urllib.request.Request(url, data=SAMPLE.read_bytes(), headers={"Content-Type": "image/jpeg"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    error = json.loads(refused.value.read())["error"]
    assert refused.value.code == 400 and error["message"] == "the query string has 2 'top_k' parameters; send one"


def test_azure_functions(azure):
    status, _, body = azure("POST", SAMPLE.read_bytes(), "image/jpeg", query={"top_k": "1,5"})
    assert status == 400 and "top_k" in body["error"]["message"]


def test_a_parameter_given_once_still_works(handler):
    event = rest_api()
    event["multiValueQueryStringParameters"] = {"top_k": ["2"]}
    answer = handler(event, CONTEXT)
    assert answer["statusCode"] == 200 and len(json.loads(answer["body"])) == 2

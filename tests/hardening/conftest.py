import pytest


@pytest.fixture
def handler(fresh_service):
    from handlers.aws import lambda_handler

    return lambda_handler

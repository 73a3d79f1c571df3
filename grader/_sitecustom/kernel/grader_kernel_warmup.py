"""Imported last by the kernel's warm interpreter: start-up work that every
notebook would otherwise repeat, done once before the kernels are forked.

botocore parses its JSON service models again for every session, and the
SDK makes a new session for nearly every client it builds: about thirty
clients and two seconds of parsing in a short notebook. The parsed data of
botocore's and boto3's own model files is kept for the life of the process,
and the models a notebook needs are parsed here. They are package files,
the same for every student, and each kernel reads its own copy-on-write copy
of them, so nothing passes from one submission to the next. Model files
found anywhere else (``~/.aws/models``, ``AWS_DATA_PATH``) are read as usual.
"""

import os

import boto3
import botocore
import botocore.loaders
import botocore.session

#: The services a notebook reaches through the SDK, boto3 and pandas.
SERVICES = (
    "sagemaker",
    "sagemaker-runtime",
    "sagemaker-featurestore-runtime",
    "sagemaker-metrics",
    "s3",
    "sts",
    "iam",
    "logs",
    "cloudwatch",
)

_PACKAGE_DATA = tuple(
    os.path.join(os.path.dirname(module.__file__), "data") + os.sep
    for module in (botocore, boto3)
)


def _share_package_models(loader_class):
    load_file = loader_class.load_file
    parsed = {}

    def load_shared_file(self, file_path):
        if not file_path.startswith(_PACKAGE_DATA):
            return load_file(self, file_path)
        if file_path not in parsed:
            parsed[file_path] = load_file(self, file_path)
        return parsed[file_path]

    loader_class.load_file = load_shared_file


def _parse_models():
    # No request is sent: the clients exist only to load what they need.
    session = boto3.Session(
        aws_access_key_id="warm-up",
        aws_secret_access_key="warm-up",
        region_name="us-east-1",
    )
    for service in SERVICES:
        session.client(service, endpoint_url="http://127.0.0.1:9")
    session.resource("s3", endpoint_url="http://127.0.0.1:9")


_share_package_models(botocore.loaders.JSONFileLoader)
_parse_models()

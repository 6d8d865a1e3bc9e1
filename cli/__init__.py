"""The command line and the tools around the service (never deployed: the functions carry ``core/`` alone).

python -m cli PATH_OR_URL [--top-k N]            one image, the API's JSON (cli/predict.py)
python -m cli classify PATHS_OR_URLS... --out F  many images, CSV or JSON Lines (cli/bulk.py)
"""

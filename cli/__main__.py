"""python -m cli PATH_OR_URL (one image) or python -m cli classify ... (many), or python -m cli
backfill TARGET (the photos already in a bucket, on the cloud's own fan-out engine)."""

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["classify"]:
        from .bulk import main as classify_many

        return classify_many(argv[1:])
    if argv[:1] == ["backfill"]:
        from .backfill import main as backfill

        return backfill(argv[1:])
    from .predict import main as classify_one

    return classify_one(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m cli PATH_OR_URL`` (one image) or ``python -m cli classify ...`` (many)."""

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["classify"]:
        from .bulk import main as classify_many

        return classify_many(argv[1:])
    from .predict import main as classify_one

    return classify_one(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

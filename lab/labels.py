"""The book's ten clothing labels, in the order the book's model outputs them."""

CLOTHING_LABELS = (
    "dress",
    "hat",
    "longsleeve",
    "outwear",
    "pants",
    "shirt",
    "shoes",
    "shorts",
    "skirt",
    "t-shirt",
)

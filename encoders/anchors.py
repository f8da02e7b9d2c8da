"""Labelled anchor sentences for the prototype heads.

Each head embeds its anchors once at start-up with the same backbone; a text's reading is its
cosine similarity to the anchor centroids. Editing these lists changes what a facet means, so keep
them short, plain and balanced.
"""

SENTIMENT_ANCHORS: dict[str, list[str]] = {
    "negative": [
        "This is terrible, I hate it.",
        "Awful quality, it broke after one day. Very disappointed.",
        "Worst purchase ever, a complete waste of money.",
        "Bad, poor, useless and frustrating.",
        "I regret buying this, do not recommend.",
        "The company missed estimates and cut its guidance; shares plunged.",
    ],
    "neutral": [
        "It is a product.",
        "The package arrived on Tuesday.",
        "This item comes in blue and black.",
        "The store opens at nine.",
        "It has a length of thirty centimetres.",
        "The company will report results next week.",
    ],
    "positive": [
        "This is excellent, I love it.",
        "Great quality, works perfectly. Very happy.",
        "Best purchase ever, worth every penny.",
        "Good, wonderful, useful and delightful.",
        "I highly recommend this, fantastic.",
        "The company beat estimates and raised its guidance; shares jumped.",
    ],
}

FORMALITY_ANCHORS: dict[str, list[str]] = {
    "casual": [
        "lol this thing is sooo cool tbh",
        "omg yeah gonna grab one of these",
        "meh it's ok i guess, whatever",
        "dude this rocks haha",
    ],
    "formal": [
        "The product meets the stated specifications and performs as documented.",
        "We would like to enquire about the availability of this item.",
        "The device is constructed from durable materials and is suitable for daily use.",
        "Kindly note that the warranty covers manufacturing defects.",
    ],
}

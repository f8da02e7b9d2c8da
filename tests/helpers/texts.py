"""Review texts shared by the sentiment-learning tests."""

# VADER's compound score is 0 for all of these (and negative for "No wear ..."): its lexicon has no
# word for wear and tear, so only learning from the ratings can tell them apart.
DIED = ["Fell apart after {} uses.", "Returned it, it lasted {} days.", "The screen cracked after {} days.",
        "Sent it back after {} days.", "The sole came off after {} runs.", "Leaks after {} washes."]
LASTED = ["Works every day for {} months now.", "Holds a charge for {} days.", "Ran {} marathons in them.",
          "Still waterproof after {} hikes.", "No wear after {} months of daily use."]

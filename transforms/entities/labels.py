"""One label set across spaCy models: each model's own labels mapped to the common set the datasets use.

The common set is OntoNotes' (what the English models say) plus MISC:

| common | meaning | from English (OntoNotes) | from CoNLL/WikiNER-style models (fr, de, es, ...) |
|---|---|---|---|
| PERSON | people, real or fictional | PERSON | PER |
| ORG | companies, agencies, institutions | ORG | ORG |
| GPE | countries, cities, states | GPE | LOC, when a gazetteer knows the place |
| LOC | other places: regions, mountains, waters | LOC | LOC |
| FAC | buildings, airports, roads | FAC | (LOC) |
| NORP | nationalities, religious or political groups | NORP | (MISC) |
| PRODUCT, EVENT, WORK_OF_ART, LAW, LANGUAGE | as named | same | (MISC) |
| MISC | other names a model does not type further | - | MISC |
| DATE | dates and periods | DATE | - |

`model_label` keeps what the model said, so nothing is lost by the mapping.
"""

from __future__ import annotations

# Model labels whose common name differs; every other label is its own common label.
_TO_COMMON = {"PER": "PERSON", "PERS": "PERSON", "ORGANIZATION": "ORG", "LOCATION": "LOC", "MISCELLANEOUS": "MISC"}

COMMON_LABELS = (
    "PERSON",
    "NORP",
    "FAC",
    "ORG",
    "GPE",
    "LOC",
    "PRODUCT",
    "EVENT",
    "WORK_OF_ART",
    "LAW",
    "LANGUAGE",
    "MISC",
    "DATE",
)


def common_label(model_label: str) -> str:
    """The common label of a model's label ("PER" -> "PERSON"); an unknown label is kept, upper-cased."""
    label = model_label.strip().upper()
    return _TO_COMMON.get(label, label)

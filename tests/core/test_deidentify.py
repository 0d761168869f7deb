"""De-identification: authored sentences with every kind of identifier, each replaced
by its typed placeholder, and sentences without identifiers left exactly as they were."""

from __future__ import annotations

import pytest

from therapist_app.core.deidentify import KINDS, deidentify, find_identifiers

REPLACED = [
    ("My name is Sarah Jones.", "My name is [NAME]."),
    ("Call Sarah Jones on 07700 900123 before 3 March.",
     "Call [NAME] on [PHONE] before [DATE]."),
    ("My husband Tariq moved out.", "My husband [NAME] moved out."),
    ("My friend Grace said hi.", "My friend [NAME] said hi."),
    ("I told Dr Okonkwo everything.", "I told Dr [NAME] everything."),
    ("Mrs. Lindqvist next door keeps calling.", "Mrs. [NAME] next door keeps calling."),
    ("Michael's mum called.", "[NAME]'s mum called."),
    ("I hope May Sutton calls.", "I hope [NAME] calls."),
    ("Our son, called Idris, is twelve.", "Our son, called [NAME], is twelve."),
    ("We live in Leeds now.", "We live in [PLACE] now."),
    ("I grew up in Springfield.", "I grew up in [PLACE]."),
    ("She works at St Mary's Hospital.", "She works at [PLACE]."),
    ("I moved to New York in 2019.", "I moved to [PLACE] in 2019."),
    ("It happened on 14/02/2021.", "It happened on [DATE]."),
    ("It happened on 2021-02-14.", "It happened on [DATE]."),
    ("It happened on March 3rd, 2021.", "It happened on [DATE]."),
    ("Her birthday is the 4th of July.", "Her birthday is the [DATE]."),
    ("Things changed in June 2022.", "Things changed in [DATE]."),
    ("Ring me on +44 20 7946 0958.", "Ring me on [PHONE]."),
    ("My number is (555) 123-4567.", "My number is [PHONE]."),
    ("Email me at sam.lee@example.org please.", "Email me at [EMAIL] please."),
    ("I live at 221B Baker Street.", "I live at [ADDRESS]."),
    ("Send it to Flat 3, 12 Elm Road.", "Send it to [ADDRESS]."),
    ("Our postcode is LS1 4AB.", "Our postcode is [ADDRESS]."),
    ("Write to PO Box 42.", "Write to [ADDRESS]."),
    ("My SSN is 123-45-6789.", "My SSN is [ID]."),
    ("My NHS number is 943 476 5919.", "My NHS number is [ID]."),
    ("The case reference is QX-44718.", "The case reference is [ID]."),
    ("My passport AB1234567 expired.", "My passport [ID] expired."),
    ("See https://example.com/profile/me now.", "See [URL] now."),
    ("Sarah Jones from Leeds, born 2 May 1990, phone 0113 496 0000.",
     "[NAME] from [PLACE], born [DATE], phone [PHONE]."),
]

UNCHANGED = [
    "I feel anxious most mornings.",
    "Will I ever feel better?",
    "Grace under pressure is hard for me.",
    "I hope things get better in March.",
    "On Monday I felt low, and by Friday it was worse.",
    "I slept 7 hours and walked 10000 steps.",
    "I have 2 kids and 3 dogs.",
    "I read chapter 12 of the book.",
    "COVID-19 made everything worse from 1990-2000 levels.",
    "My mum said I should rest.",
    "It costs 20 dollars a week.",
    "I went to the park and then home.",
    "I can't stop thinking about it.",
    "Maybe I should call my doctor tomorrow.",
    "The Anxiety was worse in the evening.",
]


@pytest.mark.parametrize("text, expected", REPLACED)
def test_identifiers_are_replaced_with_typed_placeholders(text, expected):
    assert deidentify(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_identifiers_is_untouched(text):
    assert deidentify(text) == text
    assert find_identifiers(text) == []


def test_every_kind_is_exercised_by_the_table():
    seen = {placeholder for _, expected in REPLACED for placeholder in KINDS
            if f"[{placeholder}]" in expected}
    assert seen == set(KINDS)


def test_deterministic_and_idempotent():
    text = REPLACED[-1][0]
    once = deidentify(text)
    assert deidentify(text) == once
    assert deidentify(once) == once

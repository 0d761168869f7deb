"""The deterministic phrase lists of the crisis-risk detector, kept apart from its logic.

Every pattern is matched case-insensitively against the client's text after hyperbolic
idioms have been blanked out. Written by the project's authors; docs/risk.md says what
each category covers and what these lists cannot catch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("suicide_selfharm", "harm_others", "abuse", "substance_medical")
NONE = "none"
RISK_LABELS = CATEGORIES + (NONE,)


@dataclass(frozen=True)
class Pattern:
    category: str
    regex: re.Pattern
    severity: str = "moderate"  # "moderate" or "high" before context adjusts it
    # The client must be the subject: the clause before the match names I/me/my.
    first_person: bool = False
    # Only counts when the same sentence holds a trigger suppressed as negated
    # ("I've never done it, but I've thought about it").
    after_negated: bool = False
    # A third party's event in the distant past ("her cousin overdosed last year") is
    # reported speech, not the client's crisis.
    third_party: bool = False


def _p(category: str, regex: str, severity: str = "moderate", **flags: bool) -> Pattern:
    return Pattern(category, re.compile(regex, re.IGNORECASE), severity, **flags)


_SELF_BODY = r"(?:myself|my (?:arms?|wrists?|legs?|thighs?|skin|stomach))"
_OBJECT = (
    r"(?:him|her|them|you|someone|somebody|anyone|people|"
    r"my (?!self\b|back\b|finger|hand|knee|foot|feet|ankle|head|neck|shoulder|toe|leg|arm|wrist)[\w'-]+|"
    r"his \w+|their \w+|that (?!none|nobody|no one|my|I|he|she|they|we|you|it|everyone|people)\w+|(?:old |young |random )?(?:people|strangers)|"
    r"a (?:stranger|man|woman|guy|bloke|lad|kid|child|boy|girl|colleague|neighbour)|"
    r"the (?:baby|kids?|child|children|guy|man|woman|lads?|boys?|girls?|people|neighbours?|bloke|teacher|boss|people))"
)
_HARM_VERB = (
    r"(?:kill\w*|murder\w*|hurt\w*|throttl\w*|stab\w*|shoot\w*|shot|strangl\w*|chok\w*|beat\w*|attack\w*|"
    r"punch\w*|hit|hitting|poison\w*|smash\w*|push\w*|shov\w*|kick\w*|slap\w*)"
)
_DRUG = (
    r"(?:pills|tablets|paracetamol|ibuprofen|aspirin|diazepam|painkillers|meds|medication|strip|"
    r"antidepressants|sertraline|citalopram|fluoxetine|oxycodone|codeine|tramadol|morphine|benzos|"
    r"xanax|zopiclone|insulin|lithium|methadone|pregabalin|gabapentin|quetiapine)"
)
_AGENT = (
    r"(?:\bhe\b|\bshe\b|\bthey\b|\ba man\b|\ba woman\b|\ban adult\b|\bsomeone\b|"
    r"\b(?:my|her|his|their|our) (?:\w+'s )?(?:husband|wife|partner|boyfriend|girlfriend|ex|dad|father|mum|mom|"
    r"mother|step-?dad|step-?mum|step-?father|step-?mother|brother|sister|son|daughter|uncle|aunt|"
    r"carer|grandad|grandfather|grandmother|boss|coach|teacher|brother-in-law|sister-in-law|flatmate|"
    r"landlord|neighbour|cousin)|\b(?:the )?older (?:kids|boys|girls|men)|\b(?:the )?(?:staff|carers?|nurses?|care workers?))"
)
_VICTIM_CLIENT = (
    r"(?:me|us|my (?:little |baby |younger )?(?:brother|sister|son|daughter|kids|children|"
    r"child|niece|nephew|cousins?|mum|mother|dad|father|nan|gran|grandma|grandad)|the (?:kids|children|baby|boys|girls))"
)
_ABUSE_VERB = (
    r"(?:abus(?:es|ed|ing)|mistreat(?:s|ed|ing)|hits?|hitting|beats?|beat|beating|slaps?|slapped|kicks?|kicked|punch(?:es|ed)?|push(?:es|ed)|"
    r"shoves?|shoved|strangl\w*|chok(?:es|ed)|rap(?:es|ed)|touch(?:es|ed)|forc(?:es|ed)|lock(?:s|ed)|"
    r"ties|tied|burn(?:s|ed|t)|hurts|hurt|threaten(?:s|ed|ing)?|stalk(?:s|ed|ing)|ties? \w+ up|throws? things at|"
    r"threw things at|kill(?:s)?|'d kill|'ll kill|'ll hurt|would kill|will kill|will hurt|"
    r"pin(?:s|ned)|grab(?:s|bed)|drag(?:s|ged)|bit(?:es)?|shak(?:es)|shook|starv(?:es|ed))"
)

# The client as the one who acts: "I ...", or a sentence with the subject dropped
# ("Want to hurt my neighbour", "gonna smash his face in").
_ACTOR = r"(?:\bI\b|^\s*(?:want|wanna|need|going|gonna|planning|plan|tempted|about|ready)\b)"

PATTERNS: tuple[Pattern, ...] = (
    # -- suicide or self-harm ----------------------------------------------------
    _p("suicide_selfharm", r"\bkill(?:ing)? myself\b"),
    _p("suicide_selfharm", r"\bhang(?:ing)? myself\b", "high"),
    _p("suicide_selfharm", r"\bsuicidal\b", first_person=True),
    _p(
        "suicide_selfharm",
        r"\b(?:think\w*|thought|consider\w*|contemplat\w*|plan\w*|attempt\w*) (?:about |of )?suicide\b",
    ),
    _p("suicide_selfharm", r"\b(?:end|ending|take|taking|took) my (?:own )?life\b"),
    _p(
        "suicide_selfharm",
        r"\bsuicide\b[^.!?]{0,40}\bI(?:'ve| have| keep| am|'m)? (?:think|thinking|thought|consider\w*|plan\w*|dream\w*)\b",
    ),
    _p("suicide_selfharm", r"\bend(?:ing)? it(?: all)?\b(?! with)(?! for)", first_person=True),
    _p("suicide_selfharm", r"\bwant (?:it|everything|this) (?:all )?to end\b", first_person=True),
    _p("suicide_selfharm", r"\b(?:want|wants|wanted|wanting|wish|plan|planning|ready) to die\b", first_person=True),
    _p("suicide_selfharm", r"\bwish(?:ed)? I (?:was|were) dead\b|\brather be dead\b|\bbetter off dead\b"),
    _p("suicide_selfharm", r"\bbetter off without me\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:better|happier|easier)\b[^.!?]{0,30}\bif I (?:just )?(?:was|were|wasn't|weren't|disappeared|died)(?: here| gone| dead| around)?\b",
    ),
    _p("suicide_selfharm", r"\bdisappear(?:ed)? (?:for good|forever|for ever|permanently)\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:tried|trying|attempt\w*) to (?:overdose|kill myself|end (?:it|my life)|hang myself|take my (?:own )?life)\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\blooked up (?:which|where|how|ways|methods)\b[^.!?]{0,30}\b(?:bridges?|die|kill|overdose|hang|lethal|jump)\w*\b",
        "high",
    ),
    _p("suicide_selfharm", r"\bsee if I(?:'d| would) wake up\b|\bnot (?:be here|exist|be alive)\b", first_person=True),
    _p("suicide_selfharm", r"\b(?:hit\w*|bang\w*) my head (?:against|on)\b|\buntil (?:it|I) bleeds?\b"),
    _p("suicide_selfharm", r"\b(?:rope|noose|ligature)\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:don't|do not) care (?:if|whether) I live or die\b|\btired of (?:being alive|living)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bI(?:'d| would) (?:just )?be out of (?:the|everyone's|their) way\b|\b(?:better|happier) (?:life|lives|off)\b[^.!?]{0,30}\bwithout me\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:death|dying|being dead) (?:would|will|might) be (?:a relief|easier|better|peaceful)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bif I (?:just )?(?:wasn't|weren't|was not|were not) (?:here|around|alive)\b|\bif I (?:was|were) (?:gone|dead)\b|\bif I (?:died|disappeared)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:tonight|today|this weekend)\b[^.!?]{0,40}\b(?:do it|end it|go through with it)\b|\b(?:do it|end it|go through with it)\b[^.!?]{0,20}\b(?:tonight|today)\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:slit|slash\w*|cut\w*|razor|blade)\b[^.!?]{0,20}\bwrists?\b|\b(?:razor|blade|knife|lighter)\b[^.!?]{0,20}\bmy (?:arms?|legs?|thighs?|skin)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bsaying goodbye to (?:people|everyone|everybody|my \w+)\b|\bsleep (?:forever|for ever|and never wake)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:can't|cannot|don't think I can|not sure I can) (?:keep living|keep going|go on|carry on)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bhow easy it would be to (?:jump|die|end it|do it|step)\b|\b(?:thinking|thought) (?:about|of) (?:jumping|dying|ending it|not being here|overdosing|hanging)\b",
        first_person=True,
    ),
    _p("suicide_selfharm", r"\b(?:don't|do not|didn't) want to (?:be here|be alive|live|exist|wake up|go on)\b"),
    _p("suicide_selfharm", r"\b(?:not|never) wake up\b", first_person=True),
    _p(
        "suicide_selfharm",
        r"\bno (?:reason|point) (?:to|in) (?:live|living|going on|carrying on|being alive|being here)\b",
    ),
    _p("suicide_selfharm", r"\b(?:can't|cannot|can not) go on\b", first_person=True),
    _p("suicide_selfharm", r"\bstop existing\b|\bstop the pain (?:permanently|for good|forever)\b"),
    _p("suicide_selfharm", r"\b(?:cut|cutting|burn|burning|burned|burnt|scratch\w*|harm\w*|starv\w*) " + _SELF_BODY),
    _p("suicide_selfharm", r"\b(?:hurt|hurting|hit|hitting|punch\w*|injur\w*) myself\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:cut\w*|burn\w*|hurt\w*|hit\w*|scratch\w*|punch\w*|bang\w*|scald\w*) (?:myself|my \w+)\b[^.!?]{0,30}\b(?:on purpose|deliberately)\b",
    ),
    _p("suicide_selfharm", r"\bself[- ]?harm\w*\b", first_person=True),
    _p("suicide_selfharm", r"\burges? to (?:cut|hurt|harm|burn)\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:jump\w*|step\w*|throw\w* myself|driv\w*(?: my car| the car)?)(?: off| from| in front of| into)(?: the| a| my)? (?:bridge|roof|building|train|lorry|bus|tracks|platform|cliff|balcony|river|traffic)\b",
    ),
    _p("suicide_selfharm", r"\blooked over the edge\b|\bmy own funeral\b"),
    _p("suicide_selfharm", r"\bwon't be around (?:much )?(?:longer|for long|anymore)\b"),
    _p(
        "suicide_selfharm",
        r"\b(?:nobody|no one|no-one) would (?:even )?(?:notice|care)\b[^.!?]{0,20}\b(?:gone|dead|died|disappeared|wasn't here|weren't here)\b|\b(?:nobody|no one) would miss me\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bhow many (?:pills|tablets)\b|\b(?:pills|tablets) saved up\b|\b(?:sav\w*|stockpil\w*|hoard\w*) (?:up )?(?:my |the )?(?:\w+ )?(?:pills|tablets|meds)\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:suicide|goodbye) (?:note|letter)s?\b|\bwritten a note\b|\bwhere I'd do it\b|\bhow I(?:'d| would) do it\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\bgiv\w* (?:all )?my (?:things|stuff|possessions) away\b|\bletters to my (?:kids|children|family)\b|\bletters for (?:my|each|everyone|all)\b|\b(?:don't|do not|won't) (?:intend|expect|plan) to (?:see|be here for|make it to) (?:another|next) (?:winter|christmas|birthday|year|summer|spring)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:everyone|everybody|they|my family|my kids|the kids|people)(?:'d| would)\b[^.!?]{0,25}\bwithout me\b(?! (?:for a|for the|while|when I|if I go))",
    ),
    _p("suicide_selfharm", r"\bhow to (?:hang|kill|overdose|end)\b", "high"),
    _p("suicide_selfharm", r"\bno way out\b[^.!?]{0,30}\b(?:dying|death|die)\b"),
    _p("suicide_selfharm", r"\bcan't promise (?:I'll|I will|that I'll|to) (?:be|stay|keep) (?:myself )?safe\b"),
    _p("suicide_selfharm", r"\bdo (?:something|anything) stupid\b", first_person=True),
    _p(
        "suicide_selfharm",
        r"\bbut\b[^.!?]{0,30}\b(?:thought about it|thinking about it|considered it|been tempted|came close|nearly did)\b",
        after_negated=True,
    ),
    # Published warning signs (988 Lifeline, NHS, AFSP) in everyday words: feeling a
    # burden, putting affairs in order, saying goodbye, not expecting to be around,
    # passive wishes to die, rehearsing at a place or with a means.
    _p(
        "suicide_selfharm",
        r"\b(?:a|such a|just a|the) (?:burden|weight) (?:on|to|round|around)\b|\bweight (?:round|around) (?:every\w*|their|his|her|my \w+)'?s? necks?\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:sorted|sorting|updated|updating|made|making|wrote|written|writing|changed|finalis\w*|finaliz\w*) (?:out )?(?:my|a) (?:will|funeral plans?)\b|\b(?:my )?affairs in order\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:last|final) time (?:you(?:'ll)?|anyone(?:'ll)?|you will) (?:see|hear from) me\b|\bmade (?:my )?peace with (?:it|dying|everything|it all)\b|\bsay(?:ing)? (?:my )?goodbyes?\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:won't|will not|wont) (?:be needing|need) (?:it|this|them|any of (?:it|this|them))\b[^.!?]{0,30}\b(?:after|much longer|anymore|any more|where I'm going)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:won't|will not|wont|don't see myself|can't see myself) (?:still )?(?:be(?:ing)? )?(?:here|around|alive)\b[^.!?]{0,20}\b(?:by|for|at|next|much longer|after)\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:hope|hoping|wish|wishing|pray|praying)\b[^.!?]{0,20}\b(?:don't|won't|never|not) wake up\b|\bwish(?:ing)? (?:a|that a|the) (?:car|bus|lorry|truck|train) would hit me\b|\bwish(?:ed)? I'd never been born\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:want|need|wish) (?:everything|it all|this|the pain|it) to (?:stop|end)\b[^.!?]{0,20}\b(?:permanently|for good|forever|for ever)\b|\b(?:I'm|I am) done\b[^.!?]{0,20}\bfor good\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:nearly|almost|came close to|tried to) (?:hang\w*|kill\w*|drown\w*|gass?\w*|poison\w*) myself\b|\b(?:nearly|almost) (?:jumped|overdosed|went through with it|did it)\b",
        "high",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:work|working) up the (?:nerve|courage)\b|\b(?:lean|leaning|step|stepping|climb\w*) (?:over|off|onto|on to) (?:the )?(?:edge|railing|ledge|parapet|chair)\b|\bback from the edge\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\bhow many (?:of )?(?:my |the |these |those )?(?:\w+ )?(?:pills|tablets|capsules)\b[^.!?]{0,20}\b(?:take|need|kill|enough)\b|\b(?:quietest|highest|best|easiest) (?:cliff|bridge|spot|place|way|method)\b",
        "high",
    ),
    _p(
        "suicide_selfharm",
        r"\blife insurance\b[^.!?]{0,60}\b(?:pay\w*|sort\w*|cover\w*|get|gets|go(?:es)? to|look after)\b|\b(?:family|kids|children|wife|husband) (?:get|gets|would get) the (?:life )?insurance\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:started|start|been|keep|kept|back to) (?:cutting|burning|scratching)(?=\s*(?:again|myself|[,.;!?]|$|(?:on )?my \w+|the tops?|deeper))|\b(?:cutting|burning) again\b|\b(?:punch\w*|hit\w*|bang\w*) (?:the |a )?walls?\b[^.!?]{0,30}\b(?:until|till|til)\b[^.!?]{0,20}\b(?:bleed|split|broke|bruised)\w*\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\bmore use (?:out )?of (?:it|them|these|those) than I (?:will|would|do|ever)\b|\bgiv\w* (?:away )?(?:all )?(?:my|of my) \w+(?: \w+)? away\b[^.!?]{0,40}\b(?:won't need|soon|not going to need|where I'm going)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bwhat'?s the point (?:of|in) (?:any of (?:it|this)|living|going on|me|being here|carrying on)\b|\bno point (?:in )?(?:going on|carrying on|any of it|me being here)\b",
    ),
    # Concealing fresh wounds, rehearsing a method in the mind, goodbyes that close a
    # relationship, and suicidal thoughts named as the client's own.
    _p(
        "suicide_selfharm",
        r"\blong sleeves\b[^.!?]{0,40}\b(?:hide|cover|so (?:no ?one|nobody)|marks|scars)\b|\b(?:big |more |extra )?(?:plasters|bandages|steri-?strips|dressings)\b[^.!?]{0,40}\b(?:again|this time|arms?|legs?|thighs?|wrists?|deeper|worse)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\bwhoever (?:clears|finds|sorts|empties|cleans) (?:out |up )?(?:the|my) (?:flat|house|room|place|stuff|things)\b|\b(?:wrote|written|writing|finished) the letters\b",
    ),
    _p(
        "suicide_selfharm",
        r"\blong sleeves (?:aren't|are not|isn't|not) for the (?:cold|weather)\b|\bfresh (?:cuts|marks|burns|ones)\b[^.!?]{0,30}\b(?:deeper|last night|again)\b|\bdeeper than (?:usual|before|last time|ever)\b",
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:walk\w*|swim\w*|wad\w*) (?:out )?(?:into|to) the (?:sea|ocean|river|lake|water|waves)\b[^.!?]{0,40}\bnot (?:turning|coming|swimming) back\b|\bdrive\w* (?:into|off) (?:a |the )?(?:wall|tree|cliff|bridge|oncoming)\b",
        "high",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:won't|will not|wont) (?:need|be needing|want) (?:him|her|them|it) back\b|\b(?:my )?(?:papers|paperwork|documents) (?:are |is )?(?:all )?(?:arranged|in order|sorted)\b",
        first_person=True,
    ),
    _p(
        "suicide_selfharm",
        r"\b(?:wife|husband|partner|family|kids|children|son|daughter|mum|mother)(?: will| would|'ll)? (?:get|gets|have|has|receive) the (?:life )?insurance\b|\bthank(?:s| you) for (?:trying|putting up) with me\b",
    ),
    _p(
        "suicide_selfharm",
        r"(?:^\s*(?:and |but |so )?|\bmy )(?:the )?suicidal (?:thoughts|feelings|urges|ideas|ideation)\b",
    ),
    # -- harm to others -------------------------------------------------------
    _p("harm_others", _ACTOR + r"[^.!?,;]{0,40}?\b(?P<core>" + _HARM_VERB + r" " + _OBJECT + r")\b"),
    _p(
        "harm_others",
        _ACTOR + r"[^.!?,;]{0,40}?\b(?P<core>run \w+ over|set fire to|burn down|smash \w+ face|beat the \w+ out of)\b",
    ),
    _p("harm_others", _ACTOR + r"[^.!?,;]{0,40}?\b(?P<core>(?:shook|shake|shaking) (?:the|my) baby)\b", "high"),
    _p(
        "harm_others",
        _ACTOR
        + r"[^.!?,;]{0,40}?\b(?P<core>break (?:his|her|their|your) (?:jaw|neck|legs?|arms?|nose|face|skull)|grab\w* (?:him|her|them|my \w+) by the (?:throat|neck|hair)|drown\w* (?:him|her|them|my \w+))\b",
    ),
    _p("harm_others", r"\bwatch (?:his|her|their|your) back\b|\bI'm coming for (?:him|her|them|you)\b"),
    _p(
        "harm_others",
        r"\bmake (?:him|her|them) (?:pay|suffer)\b|\b(?:get|gets|got) what's coming to (?:him|her|them)\b",
    ),
    _p("harm_others", r"\bsomeone(?:'s| is) going to get hurt\b"),
    _p("harm_others", r"\b(?:won't|will not) be (?:breathing|alive|walking) (?:for long|much longer)\b", "high"),
    _p(
        "harm_others",
        r"\bI\b[^.!?]{0,60}\b(?P<core>with (?:a|my|the) (?:knife|hammer|bat|gun|crowbar|machete|weapon))\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:bought|got|have|carry(?:ing)?) a (?:gun|knife|weapon|machete)\b[^.!?]{0,40}\buse it\b|\b(?:I(?:'m| am|'ll| will)?|im) (?:bring\w*|tak\w*|carry\w*) (?:the|a|my) (?:\w+ )?(?:knife|hammer|bat|gun|machete|crowbar|blade)\b (?:in|to work|with me|round|along)\b",
        "high",
    ),
    # Warning signs of violence: rehearsal, surveillance of a target, weapons, revenge
    # with intent, poisoning, urges toward a child, command hallucinations.
    _p(
        "harm_others",
        r"\b(?:my )?hands? (?:round|around|on) (?:his|her|their|your) (?:throat|neck)\b|\b(?:slip\w*|put\w*|add\w*) (?:something|stuff|bleach|pills|poison)\b[^.!?]{0,10}\b(?:in|into)\b[^.!?]{0,30}\b(?:drink|tea|coffee|food|dinner|water)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:I know|I've found out|I found out|learning|learnt|learned|noting|watching|timed|clocked) (?:where|when|what time) (?:he|she|they|\w+) (?:lives|parks|works|leaves|is alone|goes|walks)\b|\b(?:watching|following|sitting outside|parked outside|learning) (?:his|her|their|my ex'?s?) (?:house|flat|place|home|apartment|routine|new \w+)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:won't|will not|isn't going to|wont) be (?:walking|breathing|standing|around) (?:around )?(?:much longer|for long|long|after)\b|\b(?:ending|end) up in (?:hospital|a coffin|the morgue|a box)\b|\bfind out what happens when\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:I(?:'ll| will| am going to|'m going to|'m gonna)|im (?:gonna|going to)|ill) make (?:sure|damn sure) (?:she|he|they)\b[^.!?,;]{0,25}?\b(?:never (?:forgets?|walks?|talks?|sees?)|regrets?|learns?|pays?|suffers?|gets? (?:it|what)|does|do)\b|\b(?:she|he|they)(?:'ll| will) regret (?:the day|it|this)\b",
    ),
    _p(
        "harm_others",
        r"\b(?:gun|shotgun|piece|knife|blade|bat|machete|crowbar)\b[^.!?]{0,30}\b(?:in (?:my|the) (?:bag|glovebox|car|pocket|boot|trunk)|under (?:the|my) (?:bed|seat|pillow))\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:something|summat|a little something)\b (?:in|under) (?:the|my) (?:glovebox|glove box|boot|bag|pocket|car|coat)\b[^.!?]{0,40}\b(?:make sure|sort (?:him|her|them)|deal with|teach (?:him|her|them)|never)\b|\b(?:that'll|it'll|this'll|that will) make sure (?:he|she|they) never\b|\bpillow\b[^.!?]{0,30}\b(?:kinder|a mercy|easier for (?:both|all) of us)\b|\blist of (?:the )?(?:\w+ ){0,2}(?:people|kids|lads|guys|men|girls|members|names|colleagues|neighbours)\b[^.!?]{0,60}\b(?:home )?addresses\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:written|wrote|got|have|know) (?:down )?the names (?:and addresses )?of (?:the )?(?:\w+ )?(?:people|kids|lads|guys|men|girls|boys)\b[^.!?]{0,10}\b(?:who|that) (?:did|hurt|bullied|wronged|attacked|jumped)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:made|making|got|have|wrote|written) a list of (?:the )?(?:people|kids|lads|guys|men|girls|everyone|names)\b[^.!?]{0,20}\b(?:who|that) (?:did|hurt|bullied|wronged|humiliated|laughed|ruined|took)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:urge|urges|impulse|tempted) to (?:shake|hit|smother|hurt|slap|throttle|strangle|drown)\b|\b(?:shake|smother) (?:him|her|them|the baby) (?:until|till) (?:he|she|they|it) (?:stopped|stops|stop)\b|\bpillow (?:down )?(?:over|on) (?:his|her|their|the baby's) face\b|\b(?:held|holding|hold) (?:the|a) pillow (?:over|on|against) (?:him|her|them|his|her)\b|\b(?:came|come|came scarily) (?:close|within an inch) (?:to|of) (?:hitting|hurting|shaking|strangling|stabbing)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:don't|do not) trust myself (?:around|with|at home|near)\b|\bvoices\b[^.!?]{0,40}\b(?:tell\w*|want\w*) me to (?:hurt|kill|stop|punish|attack)\b|\bvoices\b[^.!?]{0,80}\b(?:have to|must|need to|got to|gotta) (?:stop|kill|hurt|get|deal with|punish) (?:him|her|them)\b|\b(?:have to|must|need to|got to|gotta) (?:get|stop) (?:him|her|them) (?:first|before (?:he|she|they))\b",
    ),
    _p(
        "harm_others",
        r"\btold (?:her|him|them) (?:she|he|they) (?:won't|will not|wont|'ll never|will never) (?:see|live to see|make it to)\b|\bfinish (?:him|her|them) off\b|\b(?:he|she|they|my \w+) (?:is|are|'s|'re) going to regret (?:the day|crossing|messing|humiliating|hurting|what)\b",
        "high",
    ),
    _p(
        "harm_others",
        r"\b(?:worked out|figured out|found out|found|got|know|learned|learnt|memoris\w*|memoriz\w*|tracked|tracking|wrote down|written down) (?:his|her|their) (?:(?:new )?address|schedule|routine|movements|shifts?|shift pattern|timetable|registration|number plate)\b|\bI\b[^.!?]{0,60}\bsharpen\w*\b[^.!?]{0,40}\b(?:bag|pocket|coat|car|tomorrow|tonight|ready|him|her|them)\b",
        "high",
    ),
    # -- abuse or safeguarding ---------------------------------------------------
    _p(
        "abuse",
        _AGENT
        + r"[^.!?;]{0,40}?\b(?P<core>"
        + _ABUSE_VERB
        + r"\b[^.!?;]{0,15}?\b"
        + _VICTIM_CLIENT
        + r")\b(?! (?:dinner|tea|laugh|smile|happy|proud|feel|a cake|understand|realise|realize|think|see|want|cry|appreciate))(?! (?:to|into) (?!the\b|a\b|my\b|his\b|her\b)\w+)",
    ),
    _p(
        "abuse",
        _AGENT
        + r"[^.!?;]{0,40}?\b(?P<core>"
        + _ABUSE_VERB
        + r"\b[^.!?;]{0,15}?\b"
        + r"(?:her|him|them)"
        + r")\b(?! (?:dinner|tea|laugh|smile|happy|proud|feel|a cake))",
        third_party=True,
    ),
    _p("abuse", r"\b(?:won't|doesn't|does not|will not) let me (?:see|leave|go|have|talk|use|work|out)\b"),
    _p(
        "abuse",
        r"\bI(?:'m| am) not allowed (?:to|a|an|out|any)\b|\b(?:can't|cannot|can not|not allowed to|never allowed to) (?:leave|go out of) the (?:house|flat) (?:without|alone|unless)\b",
    ),
    _p(
        "abuse",
        r"\b(?:takes|took|keeps|kept|controls|has) (?:all )?(?:of )?my (?:wages|money|pension|passport|benefits|bank card|documents|salary)\b",
    ),
    _p(
        "abuse",
        r"\b(?:controls|keeps|took|takes|has) (?:all )?(?:the|our) (?:money|bank cards?|cards|car keys)\b|\b(?:show|bring|give|hand) (?:him|her|them) (?:every|all the|the) receipts?\b|\bchecks my phone\b|\breads (?:all )?my (?:messages|texts|emails)\b",
    ),
    _p("abuse", r"\bask (?:his|her|their) permission\b|\bunless I do what (?:he|she|they) (?:says|wants)\b"),
    _p(
        "abuse",
        r"\bhid(?:e|ing) (?:my|the) (?:bruises|marks|injuries|cuts)\b|\b(?:won't|doesn't|refuses to) give me (?:any )?money\b",
    ),
    _p("abuse", r"\bwork (?:for nothing|without pay)\b"),
    _p(
        "abuse",
        r"\b(?:took|takes|taking|stole|steals|stealing) (?:the |all the |her |his )?money (?:from|out of) (?:my )?\w+(?:'s)? (?:account|purse|wallet|pension)\b",
    ),
    _p(
        "abuse",
        r"\bthreaten\w* to (?:post|share|leak|send) my (?:nudes|photos|pictures|videos)\b|\b(?:he|she|they)(?:'ll| will|'d| would) (?:send|post|share|leak|show) (?:the|my|those|our|them) (?:videos|photos|pictures|pics|nudes)\b",
    ),
    _p("abuse", r"\b(?:sexual|explicit) (?:things|messages|photos|pictures|acts)\b"),
    _p("abuse", r"\bgroom(?:ing|ed)\b|\braped\b|\bmolest\w*\b|\bprivate parts\b"),
    _p("abuse", r"\bbruises\b[^.!?]{0,40}\b(?:tell|told|say) (?:people|everyone|them) I fell\b"),
    _p("abuse", r"\b(?:leaves|left) (?:me|us|them) without (?:food|water|my medication|heating)\b"),
    _p("abuse", r"\bviolent (?:with|towards|to) (?:me|us|the kids)\b"),
    _p(
        "abuse",
        r"\bscared (?:to go home|of (?:my )?(?:husband|wife|partner|boyfriend|girlfriend|dad|father|stepdad|mum|mother))\b",
    ),
    # Coercive control, sexual assault, threats that keep someone silent, and signs of
    # neglect of a child or a vulnerable adult (the safeguarding lists of the NSPCC,
    # Women's Aid and the Care Act guidance, in everyday words).
    _p(
        "abuse",
        r"\b(?:locks?|locked) me (?:in|out)\b|\b(?:makes|made|forces|forced) me (?:to )?(?:sleep|stay|eat|kneel|stand)\b[^.!?]{0,20}\b(?:garage|shed|outside|floor|cupboard|my room)\b|\b(?:choked|strangled|throttled) me\b",
        "high",
    ),
    _p(
        "abuse",
        r"\b(?:send|text) (?:him|her|them) (?:a )?(?:photo|picture|selfie|my location)\b|\b(?:chooses|decides|picks) what I (?:wear|eat|spend)\b|\bnot allowed to (?:see|eat|go|leave|talk|have|wear|work)\b",
    ),
    _p(
        "abuse",
        r"\bwoke up\b[^.!?]{0,40}\b(?:naked|clothes off|no clothes|no memory|didn't know where)\b|\b(?:spiked|drugged) (?:my|me)\b|\bhands on me\b|\b(?:lets|let) (?:himself|herself|themselves) in\b",
    ),
    _p(
        "abuse",
        r"\b(?:our|a|their) (?:special|little) secret\b|\b(?:it's|it is|keep it|says it's) (?:our|a|their) secret\b|\bcomes? into (?:her|his|my|their) (?:room|bed)\b|\bif (?:I|you|she|he) (?:ever )?tells? (?:anyone|anybody|someone|mum|mom)\b",
        "high",
    ),
    _p(
        "abuse",
        r"\b(?:bruises|marks|burns|injuries)\b[^.!?]{0,40}\b(?:nobody|no one|no-one|can't|won't) (?:can )?explain\b|\b(?:always|constantly) (?:starving|hungry|filthy)\b|\b(?:leaves|left) (?:him|her|them|me|us|me and my (?:\w+ )?\w+) (?:alone|on (?:his|her|their|my|our) own|by (?:him|her|them|my|our)sel(?:f|ves))\b[^.!?]{0,20}\b(?:days|nights|weekend)\b|\bfinger-?(?:shaped|mark|tip) bruises\b|\blocks? (?:the|up the) (?:fridge|food|cupboards?)\b|\b(?:never|no) (?:an )?adults? (?:home|in|around|there)\b|\b(?:same|dirty) (?:clothes|jumper|uniform|nappy)\b[^.!?]{0,15}\b(?:all|for) (?:week|days|the week)\b|\b(?:knocks?|knocking|comes? round|came round)\b[^.!?]{0,30}\basking (?:us |me )?for (?:food|bread|something to eat)\b|\b(?:go|goes|went|going|sent) to bed (?:starving|hungry|without (?:food|tea|dinner|supper))\b|\b(?:begged|begs|asked|asks|pleaded) (?:me )?(?:to stay|not to (?:go|be sent) home)\b",
    ),
    _p(
        "abuse",
        r"\bif I (?:ever )?(?:leave|left|tell|report|go to the police)\b[^.!?]{0,40}\b(?:he'll|she'll|they'll|he will|she will|he'd|she'd)\b[^.!?]{0,30}\b(?:never see|kill|hurt|take|put me|make sure)\b",
        "high",
    ),
    _p("abuse", r"\b(?:shoved|pushed|threw|slammed|pinned) me (?:into|against|down|up against|to the)\b", "high"),
    _p(
        "abuse",
        r"\b(?:put|puts|had|has|got|wrapped) (?:his|her|their) hands? (?:round|around|on) my (?:throat|neck)\b",
        "high",
    ),
    _p(
        "abuse",
        r"\b(?:ask\w*|tell\w*|told|wants?|wanted|getting|got|made|makes) (?:her|him|them|my \w+) to (?:keep (?:it|things|their \w+|the \w+|them) (?:a )?secret|send (?:photos|pictures|pics|nudes|videos)|delete (?:the|their) (?:chats?|messages))\b|\b(?:man|men|adult|guy|bloke|woman) (?:in (?:his|her|their) (?:twenties|thirties|forties|fifties|20s|30s|40s|50s)|much older|twice (?:her|his) age)\b[^.!?]{0,80}\b(?:gifts?|gift cards|money|secret|photos|pictures|meet)\b",
        "high",
    ),
    # -- acute substance or medical crisis ---------------------------------------
    _p(
        "substance_medical",
        r"\b(?:took|taken|swallowed|had|downed|necked)\b[^.!?]{0,25}?\b(?:\d{2,}|twenty|thirty|forty|fifty|a (?:load|lot|bunch|handful|bottle|packet|box|strip)|a whole (?:\w+)|all (?:my|the|of my)|the whole)\b[^.!?]{0,25}?\b"
        + _DRUG
        + r"\b",
        "high",
    ),
    _p("substance_medical", r"\bI(?:'ve| have| think I| just| had)?\s*(?:\w+\s+)?(?:overdosed|od'd)\b", "high"),
    _p("substance_medical", r"\boverdos(?:e|ed|ing)\b", third_party=True),
    _p(
        "substance_medical",
        r"\bmix\w* (?:it|alcohol|drink|booze|vodka|wine) with (?:my )?(?:pills|tablets|sleeping tablets|diazepam|meds|painkillers)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:vodka|wine|whisky|alcohol|drink)\b[^.!?]{0,20}\band a (?:handful|load|bunch) of\b|\b(?:vodka|wine|whisky|gin|beers?|cans|pints|alcohol|drink)\b[^.!?]{0,20}\b(?:and|plus|with|then) (?:some |a few |a couple (?:of )?|a handful of )?(?:of my |my )?(?:xanax|xannies|benzos|diazepam|valium|sleeping (?:pills|tablets)|painkillers|codeine|tramadol|oxy\w*|methadone|zopiclone|pregabalin)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:crushing|severe|bad|sharp) (?:chest )?pain\b|\bchest pains?\b|\bpains? in my chest\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:can't|cannot|can not|struggling to) breathe\b|\blips (?:are |going )?blue\b|\bthroat (?:is )?swelling\b|\bstopped breathing\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:vomiting|coughing up|throwing up|bringing up) blood\b|\bface (?:has )?(?:gone )?droop\w*\b|\bslurr\w* (?:my )?(?:speech|words)\b|\b(?:I'm|im|I am) slurring\b",
        "high",
    ),
    _p("substance_medical", r"\b(?:had|having) a (?:seizure|fit)\b|\bseizures?\b"),
    _p(
        "substance_medical",
        r"\b(?:more|double|triple)\b[^.!?]{0,30}\bthan (?:I'm|I am|I was) prescribed\b|\b(?:can|could) (?:barely|hardly) (?:stay awake|breathe|stand)\b",
    ),
    _p(
        "substance_medical",
        r"\bcan't (?:lift|move|feel) my (?:right |left )?(?:arm|leg|side|face|hand)\b|\bworst headache\b|\bbleeding (?:heavily|a lot|badly|won't stop)\b|\bheavy bleeding\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\bchest\b[^.!?]{0,30}\bcrush\w*\b|\bcan't feel my (?:legs|arms|face|hands|feet|body)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:took|smoked|swallowed|injected|snorted) something\b|\b(?:took|taken|had|injected|swallowed) (?:way )?too (?:much|many)\b",
    ),
    _p(
        "substance_medical",
        r"\bmix\w*\b[^.!?]{0,30}\bwith\b[^.!?]{0,15}\b(?:methadone|benzos|heroin|opioids|oxy\w*|fentanyl|diazepam|xanax|alcohol|wine|vodka|booze|whisky|"
        + _DRUG[3:]
        + r"\b|\b"
        + _DRUG
        + r"\b[^.!?]{0,40}\bwith (?:the |some |a |my )?(?:wine|vodka|beer|alcohol|drink|booze|whisky|gin)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:fainting|passing out|passed out|blacking out|blacked out|going to collapse|keep collapsing)\b",
        first_person=True,
    ),
    _p("substance_medical", r"\b(?:haven't|have not|not) eaten\b[^.!?]{0,20}\b(?:days|a week|weeks)\b"),
    _p("substance_medical", r"\bmak\w* myself (?:sick|vomit|throw up)\b"),
    _p(
        "substance_medical",
        r"\bstopped taking my (?:insulin|medication|meds|tablets|lithium)\b[^.!?]{0,20}\b(?:on purpose|deliberately)\b",
    ),
    _p(
        "substance_medical",
        r"\b(?:relapsed|used (?:heroin|meth|coke|crack|spice)|snorted|injected|shot up|smoked crack)\b",
    ),
    _p("substance_medical", r"\bseeing things\b|\bhallucinat\w*\b|\bthe shakes\b"),
    _p("substance_medical", r"\bcan't stop drinking\b|\bdrinking (?:since (?:this morning|I woke up)|all day)\b"),
    _p("substance_medical", r"\b(?:drank|swallowed|drunk) (?:some )?(?:antifreeze|bleach|weedkiller|poison)\b", "high"),
    # Emergency signs from first-aid lists: stroke (sudden worst headache, one-sided
    # weakness or vision), heart attack (pain spreading to the arm or jaw), airway,
    # bleeding that will not stop, seizures, diabetic crises, withdrawal, dangerous mixes.
    _p(
        "substance_medical",
        r"\bheadache\b[^.!?]{0,40}\b(?:thunderclap|worst (?:I've|I have|of my life|ever))\b|\b(?:vision|eyesight)\b[^.!?]{0,30}\b(?:gone|going|went) (?:blurry|dark|black|double)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\bpain\b[^.!?]{0,20}\b(?:going|spreading|moving|shooting|radiating) (?:down|into|up) (?:my|the) (?:left |right )?(?:arm|jaw|neck|back)\b|\bchest (?:has been |is |feels |was )?(?:really |so |very )?tight\b[^.!?]{0,60}\b(?:arm|jaw|sweat\w*|breath)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:can't|cannot|can not|couldn't) (?:get|catch) (?:a |my )?(?:proper |full )?(?:breath|air)\b|\bbreathing through a straw\b|\blips (?:have |are )?(?:gone |going |turned )?(?:a bit |slightly )?blue\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:nose|cut|wound|gums?)\b[^.!?]{0,30}\bbleeding\b[^.!?]{0,40}\b(?:won't stop|will not stop|for (?:over )?(?:an|a|\d+|two|three) hours?)\b|\bbleeding for (?:over )?an hour\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:ran|run|running) out of (?:my )?(?:insulin|epilepsy \w+|anti-?seizure \w+|seizure \w+|inhaler)\b|\b(?:without|no) (?:my )?insulin\b|\b(?:haven't|have not|not) (?:had|taken) (?:my |any )?insulin\b|\bpear drops\b|\bbreath smells (?:like|of) (?:nail varnish|nail polish|acetone)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:some kind of|a sort of|some sort of) (?:fit|seizure)\b|\bfitting\b|\b(?:things|bugs|insects|spiders) crawling\b|\b(?:came|coming|come) off\b[^.!?]{0,30}\bcold turkey\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:stopped|quit|came off) (?:my |taking my |the )?(?:lithium|insulin|benzos|diazepam|methadone|epilepsy \w+|antipsychotics?|warfarin)\b[^.!?]{0,60}\b(?:shaking|sick|vomit\w*|throwing up|seizures?|fits?|confused|sweating|can't sleep)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:heart|pulse)\b[^.!?]{0,20}\b(?:won't slow|going mental|racing|pounding|(?:going|beating) so (?:fast|hard)|skipping|fluttery|fluttering|all over the place)\b[^.!?]{0,40}|\b(?:room|everything)(?:'s| is| won't stop)? (?:kind of |sort of |a bit |really )?spinning\b",
        first_person=True,
    ),
    _p(
        "substance_medical",
        r"\b(?:face|mouth|smile)\b[^.!?]{0,30}\b(?:on one side|one side|lopsided|drooping|droopy)\b|\b(?:words|speech) (?:are |is |keep )?(?:coming out|came out|come out) (?:wrong|jumbled|funny|slurred|muddled)\b|\b(?:arm|hand|leg) (?:won't|can't|wouldn't|couldn't|will not) (?:hold|grip|lift|move|work)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:took|taken|take|taking) (?:my )?\w+ twice\b|\bdouble dose\b|\b(?:struggling|can't|cannot|cant) (?:to )?(?:really |even )?(?:keep my eyes open|stay awake)\b",
        "high",
    ),
    _p(
        "substance_medical",
        r"\b(?:\d+|two|three|four|five|six|near(?:ly)?(?: enough)? two) bottles\b|\b(?:\d{2,}|fifteen|twenty|a dozen) pints\b|\b(?:pills|ket|coke|xannies|benzos|methadone|spice|mdma)\b[^.!?]{0,40}\b(?:plus|and|then|with) (?:a couple (?:of )?)?(?:xannies|benzos|ket|pills|morphine|methadone|vodka|coke|lines)\b",
        "high",
    ),
)

# Idioms that use crisis words for something ordinary. Their spans are blanked before
# matching, so "my feet are killing me" can never trigger; they are listed, not guessed
# from joke markers ("lol" does not make "I want to die" safe).
HYPERBOLE = re.compile(
    r"\b(?:is|are|'s|'re|was|were|it's) killing me\b|\bdying (?:to|for|of)\b|\bdie(?:d)? (?:of|laughing)\b|"
    r"\bto die for\b|\b(?:bored|scared|worried|frozen|freezing) to death\b|"
    r"\bdead (?:tired|on my feet|boring|good|easy|serious|beat)\b|\bkill(?:ed|ing)? it\b|"
    r"\b(?:could|would|'d) (?:kill|murder) (?:for )?(?:a|an|some) (?!\w*(?:man|woman|person|one|body)\b)\w+\b|"
    r"\bkill for\b|\bmurder on\b|\b(?:is|was|be) murder\b|\bdeath of me\b|\bearly grave\b|\bkill me now\b|"
    r"\b(?:kill|murder) (?:me|him|her|them|my \w+) (?:if I'm late|if I am late|if I forget\w*|for (?:\w+ing)\b)|"
    r"\bcould(?:'ve| have) (?:strangled|killed|murdered|throttled|slapped|throttled)\b|\b(?:kill|murder|strangle|throttle) me when (?:she|he|they) (?:sees?|finds? out|hears?|gets? home)\b|\bdead meat\b|\btake a (?:hammer|sledgehammer|baseball bat|bat) to (?:the|that|this|my|his|her) (?:thing|machine|computer|laptop|printer|telly|tv|phone|car|boiler)\b|\bkill(?:ed|ing)? myself laughing\b",
    re.IGNORECASE,
)

# "I said I wanted to throttle him, but I didn't mean it": taken back in the same breath.
RETRACTED = re.compile(
    r"^[^.!?]{0,40}\b(?:I (?:didn't|did not) mean (?:it|that|a word of it)|I was (?:only |just )?joking|(?:I )?wasn't serious)\b",
    re.IGNORECASE,
)
# "Hurting myself isn't something I'd do": the negation follows a gerund subject.
NEGATION_AFTER = re.compile(
    r"^\s*(?:is|was|has|have)?\s*(?:n't|not|never)\b|^\s*(?:isn't|wasn't|hasn't)\b", re.IGNORECASE
)
# Texting drops the apostrophe: "i dont want to die".
NEGATION = re.compile(
    r"n't\b|\b(?:not|never|no|nor|neither|cannot|dont|doesnt|didnt|wont|wouldnt|cant|isnt|havent|aint)\b",
    re.IGNORECASE,
)
# Uncertainty in front of a negation keeps the risk: "I'm not sure I won't hurt myself".
NEGATION_CANCEL = re.compile(
    r"\b(?:not sure|unsure|can't promise|cannot promise|don't know (?:if|whether)|not certain|can't say)\b",
    re.IGNORECASE,
)
# A new subject after a negation cue starts a clause the cue does not reach: "when the
# baby won't stop crying I get this urge", "if I don't obey he says he'll send the photos".
NEW_SUBJECT = re.compile(r"\b(?:I|he|she|they)\b", re.IGNORECASE)
NEGATED_BELIEF = re.compile(
    r"\b(?:(?:do|does|did|would|could)n't|(?:do|does|did|would|could) not|never|not)\s+(?:think|believe|reckon|imagine|see|expect|feel like)\b|"
    r"\bnot that\b|\bno(?:body|one| one) (?:thinks|believes|expects)\b|\bno (?:way|chance)\b|\bnever in a million years\b",
    re.IGNORECASE,
)
# Texting style drops the subject: "been cutting again", "feeling like ending it".
ELIDED_SUBJECT = re.compile(
    r"^\s*(?:been|just|still|started|starting|keep|kept|feeling|felt|thinking|thought|got|had|having|"
    r"can't|cannot|want|wanted|need|tried|trying|nearly|almost|gonna|going to|took|drank|mixed|feel|wearing)\b",
    re.IGNORECASE,
)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|myself)\b", re.IGNORECASE)
# "My coworker overdosed": "my" names whose story it is, not who it happened to.
FIRST_PERSON_SUBJECT = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|myself)\b", re.IGNORECASE)
# The subject pronoun nearest before a phrase decides whose words they are: "I just want
# to sleep and not wake up" is the client's; "her son has been self-harming" is not.
PRONOUN = re.compile(
    r"\b(?:i|i'm|i've|i'd|i'll|me|myself|he|she|they|him|her|them|his|their|we|you|it|"
    r"[a-z]+(?:'s)? (?:son|daughter|friend|teenager|brother|sister|partner|cousin|neighbour|colleague))\b",
    re.IGNORECASE,
)
CLAUSE_BREAK = re.compile(r"[,;:\n]|\b(?:but|though|although|however|and|yet|except)\b", re.IGNORECASE)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
QUOTED = re.compile(r"\"[^\"\n]{1,300}\"")
OWN_WORDS = re.compile(
    r"\bI (?:wrote|write|said|say|keep saying|kept saying|told \w+|texted|typed|posted|scribbled|searched)\b[^\"]{0,30}$",
    re.IGNORECASE,
)
ADDRESSED_TO_ME = re.compile(
    r"\b(?:said|says|shouted|screamed|told|texted|messaged|threatened|warned|whispered|wrote)\s+(?:to |at )?me\b[^\"]{0,10}$",
    re.IGNORECASE,
)
THREAT_TO_YOU = re.compile(
    r"\b(?:kill|hurt|hit|beat|stab|shoot|strangle) you\b|\byou'll regret\b|\byou're dead\b", re.IGNORECASE
)
# "She asked me whether I was suicidal" reports a question, not a statement.
REPORTED_QUESTION = re.compile(r"\bask(?:s|ed|ing)? (?:me |us |him |her )?(?:whether|if)\b", re.IGNORECASE)
# A novel, a film, a role in a play or a training course reports a story, as long as the
# client does not become the subject after it ("a book about grief and I keep thinking...").
STORY_FRAME = re.compile(
    r"\b(?:in|from) (?:the|a|this|that) "
    r"(?:novel|book|film|movie|show|series|episode|documentary|podcast|play|game|news|article)\b"
    r"(?: (?:I'm|I am|I was|I've been|we're|we were) (?:reading|watching|listening to)\b| I (?:read|watched|saw|heard)\b)?|"
    r"\bmy character\b|"
    r"\b(?:novel|book|thriller|story|drama|soap|film|movie|show|series|episode|documentary|podcast|play|article)\b[^.!?]{0,10}\b(?:where|in which|about)\b|"
    r"\b(?:train|teach|taught|training|teaching)\b[^.!?]{0,40}\b(?:to spot|how to spot|to recognise|to recognize)\b",
    re.IGNORECASE,
)
HYPOTHETICAL = re.compile(
    r"\b(?:hypothetically|suppose|supposing|imagine if|imagine that|what if|what would (?:you|happen)|"
    r"would you (?:have to|need to|still)|what (?:should|do|would) I do if|in the training|for example|say someone|"
    r"if (?:someone|somebody|anyone|a (?:client|pupil|patient|child|person|friend)))\b",
    re.IGNORECASE,
)
# "If I'm honest", "sorry if" and "as if" only frame what follows, and "asking if" or
# "wondering if" embeds a question: none of them makes what follows hypothetical.
IF_WORD = re.compile(
    r"(?<!\bas )(?<!\bsorry )(?<!\bask )(?<!\basks )(?<!\basked )(?<!\basking )(?<!\bwonder )"
    r"(?<!\bwondering )(?<!\bwondered )(?<!\bknow )(?<!\bsure )(?<!\bcheck )(?<!\bchecking )(?<!\bsee )"
    r"(?<!\bme )(?<!\bus )\bif\b(?! I'm (?:being )?honest| I am (?:being )?honest| that makes sense| you like| you know| I'm truthful)",
    re.IGNORECASE,
)
# A real consequence follows the if-clause: "if she leaves me I'll kill myself".
CONSEQUENT = re.compile(
    r"\b(?:I'll|I will|I'm going to|I am going to|I'm gonna|then|I'm done|I am done|I'm out|I'm gone|I'?m \w+ing|that'll|it'll)\b|"
    r"\b(?:he|she|they)(?:'ll| will| says| said| threatens| threatened)\b",
    re.IGNORECASE,
)
COUNTERFACTUAL = re.compile(r"\b(?:I'd|I would)\b", re.IGNORECASE)
DISTANT_PAST = re.compile(
    r"\b(?:years? ago|last year|when (?:I|we|he|she|they) (?:was|were)|at college|in college|used to|as a (?:kid|child|teenager)|in the past|back then|at (?:school|uni))\b",
    re.IGNORECASE,
)
# Said of a past crisis that has ended: it is history, not a disclosure ("she got
# treatment and she's back at work now", "I did the breathing and it passed").
RESOLVED = re.compile(
    r"\b(?:sober|clean) (?:for )?(?:\w+ )?(?:years?|months)\b|\b(?:\w+ )?(?:years?|months) (?:sober|clean)\b|"
    r"\bback at (?:work|school|college|uni)\b|\bgot (?:help|treatment|better)\b|\b(?:died|passed away) (?:in|years|last|when)\b|"
    r"\b(?:it|that|which) (?:passed|went away|settled|calmed down|wore off)\b|\bturned out to be\b|"
    r"\b(?:I'm|I am|I feel) (?:completely )?safe\b|\b(?:it's|it is) not like that (?:now|anymore|any more)\b|\bthat's (?:all )?(?:behind me|in the past)\b|"
    r"\bstopped (?:about |over |nearly |almost )?\w+ (?:years?|months) ago\b|\bhaven't spoken to (?:him|her|them) in\b",
    re.IGNORECASE,
)
# A doctor's answer that ends even an emergency sign: "the chest pains turned out to be
# muscular". Only named harmless causes count; "it turned out fine" after pills does not.
DIAGNOSED = re.compile(
    r"\b(?:turned out to be|was (?:just|only)|(?:doctor|GP|A&E|hospital) (?:said|says) it was) (?:just |only )?"
    r"(?:muscular|a pulled muscle|reflux|acid reflux|heartburn|indigestion|anxiety|a panic attack|a migraine|"
    r"an ear infection|a virus|low blood pressure|dehydration)\b",
    re.IGNORECASE,
)
RETURNING = re.compile(
    r"\b(?:again|coming back|came back|come back|has come back|lately|recently|this (?:week|month)|now|starting to|moved back)\b",
    re.IGNORECASE,
)
IMMINENT = re.compile(
    r"\b(?:tonight|right now|today|this evening|tomorrow|an hour ago|just (?:took|taken|did)|"
    r"(?:have|got|bought) (?:the|a) (?:pills|rope|knife|gun|tablets)|made up my mind|know (?:how|where|when)|"
    r"plan(?:ned|ning)?|ready|saved up|written a note|when he gets home|I mean it|I swear)\b",
    re.IGNORECASE,
)

"""Generate N distinct short news articles (100 to 300 words) as .txt files: wire briefs, no near-duplicates.

Sentences come from a few dozen newsroom templates filled from large pools of names, places, organisations,
numbers and topics, so two articles share little beyond function words (pairwise shingle Jaccard well under the
dedup threshold) while each reads like a brief: a headline, a dateline lead, quotes and background.
"""

from __future__ import annotations

import argparse
import pathlib
import random

FIRST = (
    "Anna Maria Jonas Lucia Pedro Amira Tomasz Ingrid Kenji Fatima Olusegun Priya Mateo Sofia Dmitri Lena Omar "
    "Chiara Hugo Aisha Rafael Elena Kwame Mei Lars Noura Diego Hana Viktor Zara Emeka Ines Yusuf Greta Tariq Rosa "
    "Sven Leila Marco Nadia Jorge Akira Beatriz Farid Helga Ivan Joao Kofi Laila Milan Nina Oscar Paula Rui"
).split()
LAST = (
    "Berger Costa Novak Silva Haddad Kowalski Lindqvist Tanaka Okafor Sharma Alvarez Moreau Petrov Rossi Keller "
    "Nakamura Mensah Dubois Horvat Jensen Karimi Lopez Mbeki Nilsen Ortega Papadopoulos Quinn Ramos Schmidt Tran "
    "Varga Weiss Yilmaz Zhang Abbas Baptiste Castillo Dimitrov Eriksen Fischer Garcia Hansen Ibrahim Jovanovic"
).split()
PLACES = (
    "Lisbon Gdansk Tampere Porto Valencia Lyon Graz Brno Aarhus Bergen Cork Turin Split Varna Tartu Malmo Ghent "
    "Bilbao Kaunas Ostrava Leipzig Utrecht Seville Cluj Plovdiv Rijeka Tromso Salzburg Bremen Nantes Krakow Poznan "
    "Mombasa Accra Lagos Pune Surabaya Osaka Busan Hanoi Quito Cordoba Recife Leon Adelaide Hamilton Calgary Halifax"
).split()
ORGS = (
    "port authority|regional council|health ministry|transport agency|water utility|teachers' union|farmers' "
    "association|central bank|statistics office|energy regulator|airport operator|rail company|chamber of "
    "commerce|environment agency|fire service|university hospital|housing board|coast guard|meteorological "
    "office|football federation|national theatre|customs service|labour inspectorate|tourism board"
).split("|")
TOPICS = (
    "bridge repairs|a new tram line|flood defences|hospital waiting lists|school meals|a ferry contract|grain "
    "exports|wind farm permits|rent controls|a museum extension|night bus routes|fishing quotas|a cyber attack on "
    "the payroll system|coastal erosion|a shortage of nurses|electricity prices|a stadium lease|road tolls|the "
    "harbour dredging plan|vaccination rates|a tax on short-term lets|drinking water quality|cargo delays|pension "
    "reform|a strike by bus drivers|a cycling network|forest fires|a data centre|the night train service"
).split("|")
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
VERBS = "approved rejected delayed announced postponed funded criticised defended reviewed suspended".split()
ROLES = "spokeswoman spokesman director chairwoman chairman minister mayor deputy mayor chief economist".split()
TEMPLATES = (
    "{place}, {day} - The {org} {verb} plans for {topic} on {day}, a decision that affects about {n} households.",
    "{person}, the {role} of the {org}, said the cost had risen to {money} since the project began in {year}.",
    '"We have waited long enough," {person} told reporters outside the town hall in {place}.',
    "Opposition members called for an inquiry into {topic}, saying the figures did not add up.",
    "The {org} said it would publish a full assessment by {month}, after talks with unions and residents.",
    "Local businesses in {place} estimated their losses at {money} over the past {n2} weeks.",
    "{person} said {topic} was the most urgent issue for the {org} this year.",
    "Figures released on {day} showed a rise of {pct} percent compared with the same period last year.",
    "Residents gathered in the main square of {place} to protest against {topic}.",
    "The plan still needs the approval of the {org}, which meets again in {month}.",
    "{person}, who has led the {org} since {year}, declined to comment on the timetable.",
    "Critics say the {org} ignored warnings about {topic} for more than {n2} years.",
    "A similar scheme in {place} was abandoned in {year} after costs doubled.",
    "Officials expect about {n} people to be affected, most of them in the outskirts of {place}.",
    "The dispute over {topic} has divided the coalition in {place} for months.",
    '"This is not the end of the discussion," said {person}, adding that a vote could come in {month}.',
)
MONTHS = "January February March April May June July August September October November December".split()


def _fill(rng: random.Random, template: str, place: str) -> str:
    return template.format(
        place=place if rng.random() < 0.6 else rng.choice(PLACES),
        day=rng.choice(DAYS),
        org=rng.choice(ORGS),
        verb=rng.choice(VERBS),
        topic=rng.choice(TOPICS),
        n=f"{rng.randrange(200, 90_000):,}",
        n2=rng.randrange(2, 14),
        money=f"{rng.randrange(2, 900)} million euros",
        year=rng.randrange(1995, 2025),
        person=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        role=rng.choice(ROLES),
        month=rng.choice(MONTHS),
        pct=round(rng.uniform(0.5, 19.5), 1),
    )


def article(rng: random.Random, words: int) -> tuple[str, str]:
    """A headline and a body of about `words` words, one sentence per template draw, paragraphs of 1 to 3."""
    place = rng.choice(PLACES)
    lead = _fill(rng, TEMPLATES[0], place)
    sentences, count = [lead], len(lead.split())
    while count < words:
        sentence = _fill(rng, rng.choice(TEMPLATES[1:]), place)
        sentences.append(sentence)
        count += len(sentence.split())
    paras, i = [], 0
    while i < len(sentences):
        k = rng.randint(1, 3)
        paras.append(" ".join(sentences[i : i + k]))
        i += k
    title = f"{place}: {rng.choice(ORGS).capitalize()} {rng.choice(VERBS)} {rng.choice(TOPICS)}"
    return title, "\n\n".join(paras)


def write_corpus(n: int, outdir: pathlib.Path, seed: int = 7) -> list[pathlib.Path]:
    """N .txt files under outdir; returns their paths."""
    rng = random.Random(seed)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        title, body = article(rng, rng.randint(100, 300))
        path = outdir / f"brief{i:06d}.txt"
        path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("outdir", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    write_corpus(args.n, args.outdir, args.seed)
    print(f"wrote {args.n} short articles under {args.outdir}")


if __name__ == "__main__":
    main()

"""Realistic-looking (fake) personal data: names, e-mails, phones, national ids, addresses.

Vectorised: every value is assembled from small lists with index arrays and Arrow string
kernels, never a Python loop per row. The lists include non-ASCII names (Müller, José,
Łukasz ...) so encodings matter downstream. Nothing here is ever logged.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_NAMES_F = (
    "Anna", "Maria", "Emma", "Olivia", "Sophie", "Laura", "Julia", "Sarah", "Hannah", "Lena", "Chloé", "Zoë",
    "Inès", "Léa", "Maëlle", "Małgorzata", "Agnieszka", "Katarzyna", "Zofia", "Ewa", "María José", "Lucía",
    "Ana", "Carmen", "Begoña", "Núria", "Ingrid", "Åsa", "Sigríður", "Björk", "Ólöf", "Jūratė", "Dorota",
    "Elif", "Ayşe", "Zeynep", "Fatima", "Aisha", "Mary", "Jennifer", "Linda", "Patricia", "Elizabeth",
    "Susan", "Jessica", "Karen", "Nancy", "Lisa", "Margaret", "Grace", "Siobhán", "Aoife", "Renée", "Noémie",
)
FIRST_NAMES_M = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Daniel", "Matthew", "Mark", "Paul", "Peter", "Lukas", "Jonas", "Felix", "Maximilian", "Jürgen", "Jörg",
    "Björn", "Søren", "Håkon", "José", "Jesús", "Andrés", "Martín", "Iñigo", "Raúl", "François", "Jérôme",
    "Étienne", "André", "Łukasz", "Paweł", "Michał", "Wojciech", "Tomasz", "Piotr", "Dušan", "Miloš",
    "Mehmet", "Ömer", "Çağrı", "Ahmed", "Omar", "João", "Gonçalo", "Sebastián", "Seán", "Ciarán", "Oisín",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "O'Brien", "O'Connor", "McCarthy", "Smith-Jones", "Müller", "Schröder", "Schäfer", "Weiß", "Groß",
    "Köhler", "Becker", "Hoffmann", "Fischer", "Wagner", "García", "Martínez", "López", "González",
    "Rodríguez", "Fernández", "Pérez", "Sánchez", "Núñez", "Peña", "Muñoz", "Ibáñez", "Lefèvre", "Dubois",
    "Gagné", "Bélanger", "Côté", "Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamiński", "Lewandowski",
    "Dvořák", "Novák", "Horváth", "Kovács", "Nagy", "Szabó", "Jørgensen", "Sørensen", "Ødegård", "Åberg",
    "Lindqvist", "Öztürk", "Yılmaz", "Şahin", "Çelik", "da Silva", "Gonçalves", "Conceição", "Rossi",
    "Esposito", "Bianchi", "Nguyen", "Tran", "Kim", "Lee", "Chen", "Wang", "Singh", "Patel", "Khan",
)
STREETS = (
    "High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Hauptstraße", "Bahnhofstraße",
    "Schillerstraße", "Königsallee", "Calle Mayor", "Calle de Alcalá", "Avenida de España", "Rue de la Paix",
    "Rue du Faubourg Saint-Honoré", "Boulevard Saint-Germain", "ulica Marszałkowska", "ulica Długa",
    "Via Roma", "Rua Augusta", "Rua da Conceição", "Storgatan", "Drottninggatan", "Nørregade", "Váci utca",
    "Karlova", "Oak Street", "Maple Avenue", "Elm Street", "Cedar Lane", "Victoria Road",
)
CITIES = (
    ("London", "SW1A"), ("Manchester", "M1"), ("Dublin", "D02"), ("München", "80331"), ("Köln", "50667"),
    ("Düsseldorf", "40213"), ("Berlin", "10115"), ("Zürich", "8001"), ("Genève", "1201"), ("Wien", "1010"),
    ("Málaga", "29001"), ("Córdoba", "14001"), ("Madrid", "28013"), ("A Coruña", "15001"),
    ("Paris", "75001"), ("Besançon", "25000"), ("Orléans", "45000"), ("Kraków", "31-001"), ("Łódź", "90-001"),
    ("Gdańsk", "80-001"), ("Warszawa", "00-001"), ("Praha", "110 00"), ("Brno", "602 00"),
    ("Göteborg", "411 01"), ("Malmö", "211 01"), ("Århus", "8000"), ("København", "1050"),
    ("Lisboa", "1100-148"), ("Porto", "4000-322"), ("Budapest", "1051"), ("Roma", "00184"), ("Milano", "20121"),
)
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "gmx.de", "web.de",
                 "wp.pl", "orange.fr", "hotmail.co.uk", "example.org")
PHONE_FORMATS = (("+44", 4, 6), ("+49", 3, 7), ("+33", 3, 6), ("+34", 3, 6), ("+48", 3, 6), ("+1", 3, 7))

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "đ": "d",
                       "ı": "i", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
                       "'": "", " ": "", "-": ""})


def ascii_fold(text: str) -> str:
    """``Łukasz Müller`` → ``Lukasz Muller``: the ASCII form used in e-mail addresses."""
    text = text.translate(_FOLD)
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return folded.encode("ascii", errors="ignore").decode("ascii")


def _take(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(list(values), pa.string()).take(pa.array(idx))


def _digits(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    nums = rng.integers(0, 10 ** width, size=n)
    return pc.utf8_lpad(pc.cast(pa.array(nums), pa.string()), width=width, padding="0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _with_nulls(arr: pa.Array, rng: np.random.Generator, share: float) -> pa.Array:
    mask = rng.random(len(arr)) < share
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr)


def full_names(rng: np.random.Generator, female: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(FULL_NAME, EMAIL) for every applicant; names match the gender flag (XNA draws either)."""
    n = len(female)
    fi = rng.integers(0, len(FIRST_NAMES_F), n)
    mi = rng.integers(0, len(FIRST_NAMES_M), n)
    li = rng.integers(0, len(LAST_NAMES), n)
    first_idx = np.where(female, fi, mi + len(FIRST_NAMES_F))
    firsts = FIRST_NAMES_F + FIRST_NAMES_M
    first = _take(firsts, first_idx)
    last = _take(LAST_NAMES, li)
    name = _join(first, " ", last)

    folded_first = _take([ascii_fold(s).lower() for s in firsts], first_idx)
    folded_last = _take([ascii_fold(s).lower() for s in LAST_NAMES], li)
    sep = _take((".", "_", "", "."), rng.integers(0, 4, n))
    num = pc.if_else(pa.array(rng.random(n) < 0.45), _digits(rng, n, 2), pa.scalar(""))
    domain = _take(EMAIL_DOMAINS, rng.integers(0, len(EMAIL_DOMAINS), n))
    email = _join(folded_first, sep, folded_last, num, "@", domain)
    return name, _with_nulls(email, rng, 0.03)


def phones(rng: np.random.Generator, n: int) -> pa.Array:
    which = rng.integers(0, len(PHONE_FORMATS), n)
    out = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
    for i, (cc, a, b) in enumerate(PHONE_FORMATS):
        formatted = _join(cc, " ", _digits(rng, n, a), " ", _digits(rng, n, b))
        out = pc.if_else(pa.array(which == i), formatted, out)
    return _with_nulls(out, rng, 0.02)


def national_ids(seed: int, index: np.ndarray) -> pa.Array:
    """``AB123456C``-style ids, unique per index: an affine bijection of the index space."""
    space = 26 * 26 * 1_000_000 * 4
    mult = 1_000_003  # prime, coprime to 2, 5 and 13: a bijection modulo ``space``
    shift = (seed * 7_919 + 12_345) % space
    perm = (index.astype(np.int64) * mult + shift) % space
    letters = perm // 4_000_000
    digits = (perm // 4) % 1_000_000
    alphabet = [chr(65 + i) for i in range(26)]
    a = _take(alphabet, letters // 26)
    b = _take(alphabet, letters % 26)
    d = pc.utf8_lpad(pc.cast(pa.array(digits), pa.string()), width=6, padding="0")
    s = _take(("A", "B", "C", "D"), perm % 4)
    return _join(a, b, d, s)


def addresses(rng: np.random.Generator, n: int) -> pa.Array:
    number = pc.cast(pa.array(rng.integers(1, 250, n)), pa.string())
    street = _take(STREETS, rng.integers(0, len(STREETS), n))
    ci = rng.integers(0, len(CITIES), n)
    city = _take([c for c, _ in CITIES], ci)
    post = _take([p for _, p in CITIES], ci)
    flat = pc.if_else(pa.array(rng.random(n) < 0.3),
                      _join(", Apt ", pc.cast(pa.array(rng.integers(1, 120, n)), pa.string())), pa.scalar(""))
    return _with_nulls(_join(number, " ", street, flat, ", ", post, " ", city), rng, 0.01)

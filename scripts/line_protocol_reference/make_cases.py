"""Line protocol cases for the reference parser: hand-written edge cases, generated
lines, and seeded mutations of them, one JSON object a line on stdout.

    python scripts/line_protocol_reference/make_cases.py > cases.jsonl

`regenerate.sh` runs this and the reference parser; the output is the same for the same
seed, so regenerated vectors differ only where the server's parser does.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

# Each grammar point, with the cases that show how the server reads it.
EDGE_CASES = [
    # many lines, comments, blank lines, a newline inside a string value
    "cpu v=1 1\ncpu v=2 2\n",
    "# only a comment\n\n   \n\t# another\n",
    "",
    "\n\n",
    "cpu v=1\n# comment\n\ncpu v=2\nbad\ncpu v=3",
    'cpu s="a\nb",v=1 1\ncpu v=2 2',
    'cpu s="a\\"\nb" 1\nnext v=1',
    'cpu s="unterminated\ncpu v=1 1',
    "cpu v=1\\\ncpu v=2",
    "cpu v=1 1\r\ncpu v=2 2\r\n",
    "cpu v=1\r\n",
    " \t\x00cpu v=1 1",
    "#cpu v=1",
    " #cpu v=1",
    "cpu,#t=1 v=1",
    # more than one blank between sections
    "cpu  v=1  1",
    "cpu\tv=1 1",
    "cpu \tv=1 \t1",
    "cpu v=1 1  ",
    "cpu v=1 1 \t",
    "cpu v=1 \t",
    "cpu,t=a  v=1",
    "cpu v=1,  w=2",
    "cpu v=1 1 2",
    # control characters and other bytes in names
    "c\x01pu,t\x02=v\x03 f\x04=1 1",
    "cpu,t=\x7f v=1",
    "c\tpu v=1",
    "cpu,t=a\x00b v=1",
    "cpu,\x00=a v=1",
    "cpu v\n=1",
    "\u00e9t\u00e9,lieu=Z\u00fcrich temp\u00e9rature=21.5 1",
    "\U0001f600,t=\U0001f600 \U0001f600=1",
    # numbers: signs, forms, ranges
    "cpu v=+1",
    "cpu v=+1i",
    "cpu v=+1.5",
    "cpu v=-1",
    "cpu v=-0",
    "cpu v=-0.0",
    "cpu v=1.",
    "cpu v=.5",
    "cpu v=-.5",
    "cpu v=.",
    "cpu v=-",
    "cpu v=-.",
    "cpu v=1.e5",
    "cpu v=.5e-3",
    "cpu v=1e5",
    "cpu v=1E+5",
    "cpu v=1e",
    "cpu v=1e+",
    "cpu v=e5",
    "cpu v=1e5.5",
    "cpu v=1.2.3",
    "cpu v=0x10",
    "cpu v=1_000",
    "cpu v=NaN",
    "cpu v=nan",
    "cpu v=Inf",
    "cpu v=inf",
    "cpu v=-Inf",
    "cpu v=N",
    "cpu v=n",
    "cpu v=00012",
    "cpu v=1e308",
    "cpu v=1.7976931348623157e308",
    "cpu v=1.7976931348623158e308",
    "cpu v=1.7976931348623159e308",
    "cpu v=1e309",
    "cpu v=-1e309",
    "cpu v=1e-400",
    "cpu v=4.9e-324",
    "cpu v=" + "9" * 308,
    "cpu v=" + "9" * 309,
    "cpu v=" + "1" * 24,
    "cpu v=" + "1" * 25,
    "cpu v=0." + "0" * 400 + "1",
    "cpu v=1i",
    "cpu v=-1i",
    "cpu v=0i",
    "cpu v=-0i",
    "cpu v=1.5i",
    "cpu v=1e3i",
    "cpu v=i",
    "cpu v=-i",
    "cpu v=1ii",
    "cpu v=1i1",
    "cpu v=9223372036854775807i",
    "cpu v=9223372036854775808i",
    "cpu v=-9223372036854775808i",
    "cpu v=-9223372036854775809i",
    "cpu v=99999999999999999999999i",
    "cpu v=9007199254740992i",
    "cpu v=9007199254740993i",
    "cpu v=-9007199254740993i",
    "cpu v=1u",
    "cpu v=0u",
    "cpu v=-1u",
    "cpu v=-0u",
    "cpu v=1.5u",
    "cpu v=u",
    "cpu v=18446744073709551615u",
    "cpu v=18446744073709551616u",
    "cpu v=9007199254740993u",
    "cpu v=1iu",
    "cpu v=1ui",
    # booleans
    "cpu v=t,w=T,x=true,y=True,z=TRUE",
    "cpu v=f,w=F,x=false,y=False,z=FALSE",
    "cpu v=tRUE",
    "cpu v=fAlse",
    "cpu v=yes",
    "cpu v=1b",
    "cpu v=truee",
    # strings
    'cpu v="5"',
    'cpu v=""',
    'cpu v="a\\"b"',
    'cpu v="a\\\\b"',
    'cpu v="a\\nb"',
    'cpu v="a\\"',
    'cpu v="a"b',
    'cpu v="a"\u00e9,w="b"\U0001f600 1',
    'cpu v="a" "b"',
    'cpu v="a,b=c d",w=1',
    'cpu v="a\\\\"',
    'cpu v="',
    'cpu v="a""b"',
    'cpu,t="x" v=1',
    'c"pu v=1',
    'cpu v"=1',
    # timestamps
    "cpu v=1 0",
    "cpu v=1 -1",
    "cpu v=1 +1",
    "cpu v=1 1.5",
    "cpu v=1 1e9",
    "cpu v=1 -",
    "cpu v=1 9223372036854775806",
    "cpu v=1 9223372036854775807",
    "cpu v=1 9223372036854775808",
    "cpu v=1 -9223372036854775806",
    "cpu v=1 -9223372036854775807",
    "cpu v=1 -9223372036854775808",
    "cpu v=1 -9223372036854775809",
    "cpu v=1 99999999999999999999999",
    "cpu v=1 1700000000000000000x",
    "cpu v=1 12:00",
    "cpu v=1 1 x",
    # tags
    "cpu,t=a=b v=1",
    "cpu,t=a\\=b v=1",
    "cpu,t\\=k=a v=1",
    "cpu,t=a,t=b v=1",
    "cpu,b=1,a=2,b=3 v=1",
    "cpu,b=1,a=2 v=1",
    "cpu,t= v=1",
    "cpu,=a v=1",
    "cpu,t v=1",
    "cpu, v=1",
    "cpu,t=a, v=1",
    "cpu,time=1 v=1",
    "cpu,_field=1 v=1",
    "cpu,_measurement=1 v=1",
    "cpu,Time=1 v=1",
    "cpu,t=a\\ b,u=c\\,d v=1",
    # duplicate fields and the field named time
    "cpu v=1,v=2 1",
    "cpu v=1,v=2i 1",
    "cpu v=1i,v=2i 1",
    'cpu v=1,v="x" 1',
    "cpu v=t,v=false 1",
    "cpu v=1u,v=2i 1",
    "cpu time=1 1",
    "cpu time=1,v=2 1",
    "cpu time=1,time=2",
    "cpu v=1,time=x",
    # backslashes
    "c\\pu v=1",
    "cpu\\ x v=1",
    "cpu\\,x v=1",
    "cpu\\=x v=1",
    'cpu\\"x v=1',
    "cpu\\\\ v=1",
    "cpu\\\\,t=a v=1",
    "cpu,t=a\\b v=1",
    "cpu,t=a\\\\ v=1",
    "cpu,t\\a=b v=1",
    "cpu v\\=w=1",
    "cpu v\\ w=1",
    "cpu v\\,w=1",
    'cpu v\\"w=1',
    "cpu v\\x=1",
    "cpu v\\\\=1",
    "cpu a\\\\=1,b=2",
    'cpu a\\\\="x=1_0"',
    "cpu a\\\\=1 5",
    "cpu\\",
    "cpu v=1\\",
    "cpu v=1 1\\",
    "\\ cpu v=1",
    # missing pieces
    "cpu",
    "cpu ",
    "cpu v",
    "cpu v=",
    "cpu =1",
    "cpu v=1,",
    "cpu v=1,w",
    "cpu v=1,=2",
    ",cpu v=1",
    " ,cpu v=1",
    "cpu,",
    "cpu,t=a",
    "cpu,t=a ",
    "cpu 1",
    "= v=1",
    "cpu v==1",
    "cpu v=1=2",
]

ALPHABET = 'abcxyzAZ019_-+.eEiuNnTtfF"\\,= \t\n#\x00\x01\x7f\u00e9\U0001f600'
SPECIAL = '\\,= "\n\t'
NUMBERS = [
    "0", "1", "-1", "1.5", "-2.25", ".5", "5.", "1e3", "1E-3", "1e308", "2e308", "1e-330",
    "123456789012345678901234567", "0.000000000000000000000000001", "3.141592653589793",
    "12i", "-12i", "0i", "9223372036854775807i", "9223372036854775808i", "9007199254740993i",
    "7u", "0u", "18446744073709551615u", "18446744073709551616u", "t", "F", "true", "False",
]  # fmt: skip
TIMES = ["", "0", "1", "-1", "1700000000000000000", "1700000000", "1700000000000",
         "9223372036854775806", "9223372036854775807", "-9223372036854775807"]  # fmt: skip


def _name(rng: random.Random, escapes: str) -> str:
    """A name of a few characters, now and then with an escape or an odd character."""
    chars = []
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if roll < 0.1:
            chars.append("\\" + rng.choice(escapes))
        elif roll < 0.15:
            chars.append(rng.choice("\u00e9\U0001f600\x01#\"'"))
        else:
            chars.append(rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789"))
    return "".join(chars)


def _string_value(rng: random.Random) -> str:
    inner = "".join(rng.choice('ab ,=\n\\"x') for _ in range(rng.randint(0, 6)))
    return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generated_line(rng: random.Random) -> str:
    """A line from the grammar, well formed more often than not."""
    line = _name(rng, ", ")
    for _ in range(rng.randint(0, 3)):
        line += f",{_name(rng, ', =')}={_name(rng, ', =')}"
    fields = []
    for _ in range(rng.randint(1, 3)):
        value = _string_value(rng) if rng.random() < 0.2 else rng.choice(NUMBERS)
        fields.append(f"{_name(rng, ', =')}={value}")
    line += rng.choice([" ", " ", "  ", " \t"]) + ",".join(fields)
    time = rng.choice(TIMES)
    if time:
        line += rng.choice([" ", " ", "  "]) + time
    return line


def mutated(rng: random.Random, text: str) -> str:
    """text with one to three characters flipped, inserted or deleted."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        where = rng.randint(0, len(chars))
        action = rng.random()
        pool = SPECIAL if rng.random() < 0.5 else ALPHABET
        if action < 0.4 and chars and where < len(chars):
            chars[where] = rng.choice(pool)
        elif action < 0.7:
            chars.insert(where, rng.choice(pool))
        elif chars and where < len(chars):
            del chars[where]
    return "".join(chars)


def cases(seed: int, generated: int, mutations: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(text: str | bytes, precision: str = "ns") -> None:
        if isinstance(text, str):
            case = {"text": text}
        else:
            try:
                case = {"text": text.decode("utf-8")}
            except UnicodeDecodeError:
                case = {"hex": text.hex()}
        key = (json.dumps(case, sort_keys=True), precision)
        if key in seen:
            return
        seen.add(key)
        if precision != "ns":
            case["precision"] = precision
        found.append({"id": f"c{len(found)}", **case})

    for text in EDGE_CASES:
        add(text)
    for precision in ("us", "ms", "s"):
        for stamp in ("1", "-1", "9223372036", "9223372037", "-9223372037", "9223372036854775"):
            add(f"cpu v=1 {stamp}", precision)
        add("cpu v=1", precision)
    for raw in (b"c\xffpu v=1", b"cpu,t=\xfe v=1", b"cpu,\xff=a v=1", b"cpu v=1,\xc3=2",
                b'cpu s="\xe2\x82" 1', b"\xef\xbb\xbfcpu v=1"):  # fmt: skip
        add(raw)
    lines = [generated_line(rng) for _ in range(generated)]
    for line in lines:
        add(line)
    pool = EDGE_CASES + lines
    while len(found) < len(EDGE_CASES) + generated + mutations:
        roll = rng.random()
        if roll < 0.7:
            add(mutated(rng, rng.choice(pool)))
        elif roll < 0.9:
            parts = [rng.choice(pool) for _ in range(rng.randint(2, 4))]
            joined = rng.choice(["\n", "\n\n", "\n# note\n", "\n  "]).join(parts)
            add(mutated(rng, joined) if rng.random() < 0.5 else joined)
        else:
            text = mutated(rng, rng.choice(pool)).encode()
            at = rng.randint(0, len(text))
            add(text[:at] + bytes([rng.choice([0x80, 0xC3, 0xFF, 0xE2])]) + text[at:])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=20_260_101)
    parser.add_argument("--generated", type=int, default=1_500)
    parser.add_argument("--mutations", type=int, default=3_500)
    args = parser.parse_args()
    for case in cases(args.seed, args.generated, args.mutations):
        sys.stdout.write(json.dumps(case, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

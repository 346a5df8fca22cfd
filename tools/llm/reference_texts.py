"""The prompts and texts that coproc's LLM parity fixtures are made from (issue 15).

tools/llm/reference_fixtures.py runs llama.cpp on them: GREEDY_PROMPTS give greedy.json (64-token
greedy continuations), FORCED_TEXTS give teacher_forced.json (llama.cpp's argmax at every
position of its own tokenization of each text). Changing anything here changes the fixtures:
rerun tools/llm/make_reference_fixtures.sh and commit both.

Each entry is (name, text, parse_special). parse_special is llama_tokenize's flag: with it,
spellings of special tokens such as <|im_start|> become those tokens, without it they are text.
"""

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(turns, system=SYSTEM):
    """SmolLM2's ChatML chat template, as llama.cpp applies it: the system turn, each turn as
    <|im_start|>role\\ncontent<|im_end|>\\n, then the opening of the assistant's turn."""
    text = f"<|im_start|>system\n{system}<|im_end|>\n"
    for role, content in turns:
        text += f"<|im_start|>{role}\n{content}<|im_end|>\n"
    return text + "<|im_start|>assistant\n"


_RAW = [
    ("capital", "The capital of France is"),
    ("story", "Once upon a time, in a small village by the sea,"),
    ("python_def", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'),
    ("arithmetic_qa", "Q: What is 17 times 23?\nA:"),
    ("colors", "The three primary colors are"),
    ("sequence", "1, 2, 3, 5, 8, 13,"),
    ("french", "La tour Eiffel se trouve à"),
    ("c_main", "#include <stdio.h>\n\nint main(void) {\n"),
    ("science", "Photosynthesis is the process by which"),
    ("list", "Here is a list of fruits:\n- apple\n- banana\n-"),
    ("fox", "The quick brown fox"),
    ("history", "In 1969, Neil Armstrong"),
    ("sql", "SELECT name, email FROM users WHERE"),
    ("chinese", "东京是日本的首都，"),
    ("json", '{"name": "Alice", "age":'),
    ("whitespace", "   Indented text with    irregular   spacing and\ttabs\n\n\nthen blank lines"),
    ("emoji_accents", "Emoji test 🙂🚀 and accents: café, naïve, résumé. The next word is"),
]

_CHATS = [
    ("chat_capital", [("user", "What is the capital of France?")]),
    ("chat_haiku", [("user", "Write a haiku about the ocean.")]),
    ("chat_hash_table", [("user", "Explain what a hash table is in two sentences.")]),
    ("chat_spider", [("user", "How many legs does a spider have?")]),
    ("chat_translate", [("user", "Translate 'good morning' into Spanish.")]),
    ("chat_sleep", [("user", "Give me three tips for better sleep.")]),
    ("chat_reverse", [("user", "Write a Python function that reverses a string.")]),
    ("chat_sum", [("user", "What is 12 + 30?")]),
    ("chat_romeo", [("user", "Summarize the plot of Romeo and Juliet in one sentence.")]),
    ("chat_hi", [("user", "Hi!")]),
    ("chat_multi_turn",
     [("user", "What's 2+2?"), ("assistant", "2+2 equals 4."), ("user", "And times 3?")]),
    ("chat_recipe", [("user", "List the ingredients of a simple pancake recipe.")]),
]

GREEDY_PROMPTS = (
    [(name, text, False) for name, text in _RAW]
    # A special token's spelling in a raw prompt stays text when special parsing is off.
    + [("special_spelling_as_text", "The token <|im_end|> marks the end of a turn, and", False)]
    + [(name, chatml(turns), True) for name, turns in _CHATS]
)

_PROSE = """The history of the lighthouse is, in many ways, the history of coastal trade. Long before \
electricity, sailors relied on fires lit on hilltops to warn them away from rocks and shoals. The \
ancient Pharos of Alexandria, completed around 280 BC, stood for more than a thousand years and \
became one of the Seven Wonders of the World. Its light, reflected by polished bronze mirrors, was \
said to be visible from many miles out at sea.

During the eighteenth and nineteenth centuries, the design of lighthouses changed dramatically. \
Engineers such as John Smeaton and Robert Stevenson learned how to build towers that could survive \
the full force of Atlantic storms. Smeaton studied the shape of oak trees, which are wide at the \
base and narrow toward the top, and he used interlocking blocks of granite so that the waves could \
not pull the structure apart. His tower on the Eddystone Rocks stood for over a century, and it was \
only replaced because the rock beneath it began to erode.

The invention of the Fresnel lens in 1822 was another turning point. Augustin-Jean Fresnel, a \
French physicist, arranged concentric rings of glass prisms around a single lamp, bending the light \
into a narrow, powerful beam. A lens of the first order could be taller than a person and weigh \
several tons, yet it allowed a modest oil flame to be seen twenty miles away. Rotating the lens on a \
bed of mercury gave each lighthouse its own pattern of flashes, so that a navigator could tell one \
station from another in the dark.

Keepers lived hard and often lonely lives. They trimmed the wicks, polished the brass, wound the \
clockwork that turned the lens, and kept careful logs of the weather and of passing ships. Some \
stations were on islands so remote that supplies arrived only a few times a year. Stories of \
heroic rescues, like that of Grace Darling, who rowed out with her father in 1838 to save the \
survivors of a shipwreck, made keepers into national figures.

Today, almost every lighthouse in the world is automated. Satellite navigation has made the old \
beams less essential, but many towers still operate as aids to navigation, and others have been \
turned into museums, guest houses, and nature reserves. They remain powerful symbols of safety, \
guidance, and the long human effort to make the sea a little less dangerous."""

_CODE = '''import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Task:
    """A unit of work with a priority and an optional list of dependencies."""

    name: str
    priority: int = 0
    depends_on: List[str] = field(default_factory=list)
    done: bool = False

    def ready(self, finished: Dict[str, bool]) -> bool:
        return all(finished.get(dep, False) for dep in self.depends_on)


class Scheduler:
    def __init__(self, tasks: Optional[List[Task]] = None) -> None:
        self.tasks: Dict[str, Task] = {}
        for task in tasks or []:
            self.add(task)

    def add(self, task: Task) -> None:
        if task.name in self.tasks:
            raise ValueError(f"duplicate task: {task.name}")
        self.tasks[task.name] = task

    def next_task(self) -> Optional[Task]:
        finished = {name: t.done for name, t in self.tasks.items()}
        candidates = [t for t in self.tasks.values() if not t.done and t.ready(finished)]
        if not candidates:
            return None
        return max(candidates, key=lambda t: (t.priority, t.name))

    def run(self) -> List[str]:
        order = []
        while (task := self.next_task()) is not None:
            task.done = True
            order.append(task.name)
        return order


def load(path: str) -> Scheduler:
    with open(path, "r", encoding="utf-8") as f:
        data = json.load(f)
    return Scheduler([Task(**item) for item in data["tasks"]])


if __name__ == "__main__":
    scheduler = load(os.environ.get("TASKS", "tasks.json"))
    print(" -> ".join(scheduler.run()))

// The same idea in C: a fixed-size ring buffer of integers.
#include <stdbool.h>
#include <stddef.h>

#define RING_CAPACITY 64

typedef struct {
    int items[RING_CAPACITY];
    size_t head;
    size_t tail;
    size_t count;
} ring_t;

static bool ring_push(ring_t *ring, int value) {
    if (ring->count == RING_CAPACITY) {
        return false;
    }
    ring->items[ring->tail] = value;
    ring->tail = (ring->tail + 1) % RING_CAPACITY;
    ring->count++;
    return true;
}

static bool ring_pop(ring_t *ring, int *out) {
    if (ring->count == 0) {
        return false;
    }
    *out = ring->items[ring->head];
    ring->head = (ring->head + 1) % RING_CAPACITY;
    ring->count--;
    return true;
}
'''

_CHAT = chatml([
    ("user", "I'm planning a trip to Japan in April. What should I know before I go?"),
    ("assistant", "April is a wonderful time to visit Japan because it is cherry blossom season. "
     "Here are a few things to keep in mind:\n\n1. Book accommodation early, since hotels in "
     "Tokyo and Kyoto fill up quickly during the blossom season.\n2. Consider a Japan Rail Pass "
     "if you plan to travel between cities by bullet train.\n3. Carry some cash, because smaller "
     "shops and restaurants may not accept cards.\n4. Learn a few basic phrases such as "
     "\"arigatou\" (thank you) and \"sumimasen\" (excuse me).\n5. Pack layers: mornings and "
     "evenings can be cool, while afternoons are often mild."),
    ("user", "That's helpful. How many days would you recommend for Tokyo and Kyoto?"),
    ("assistant", "For a first visit, four days in Tokyo and three days in Kyoto is a good "
     "balance. In Tokyo you can explore neighborhoods like Shibuya, Asakusa and Shinjuku, and take "
     "a day trip to Nikko or Kamakura. In Kyoto, spend your time at temples such as Kinkaku-ji and "
     "Fushimi Inari, and walk through the historic Gion district in the evening. If you have an "
     "extra day, Nara is only 45 minutes from Kyoto and is famous for its friendly deer."),
    ("user", "Great. Can you write me a short packing checklist?"),
    ("assistant", "Of course! Here is a short packing checklist:\n\n- Passport and a copy of "
     "your travel insurance\n- Comfortable walking shoes\n- A light rain jacket or umbrella\n- "
     "Power adapter (Japan uses type A plugs, 100 V)\n- A small towel and hand sanitizer\n- A "
     "reusable bag for shopping\n- Your rail pass voucher and hotel confirmations\n\nHave a "
     "wonderful trip!"),
    ("user", "Thanks! One last question: is tipping expected in restaurants?"),
    ("assistant", "No, tipping is not customary in Japan and can even cause confusion. Good "
     "service is considered part of the experience, so simply saying \"gochisousama deshita\" "
     "after your meal is the best way to show appreciation."),
])

_NUMBERS = """Quarterly report, fiscal year 2023 (all amounts in thousands of USD)

| Quarter | Revenue | Costs  | Profit | Margin |
|---------|---------|--------|--------|--------|
| Q1      | 12,450  | 9,870  | 2,580  | 20.7%  |
| Q2      | 13,910  | 10,220 | 3,690  | 26.5%  |
| Q3      | 11,305  | 9,415  | 1,890  | 16.7%  |
| Q4      | 15,780  | 11,032 | 4,748  | 30.1%  |
| Total   | 53,445  | 40,537 | 12,908 | 24.2%  |

Key dates: 2023-01-15, 2023-04-30, 2023-07-31 and 2023-10-31. The board met on 12/05/2023 at \
14:30 and approved a dividend of $0.45 per share, payable on 2024-02-01.

Arithmetic checks:
3 + 4 = 7
12 * 12 = 144
1024 / 16 = 64
2^10 = 1024
sqrt(144) = 12
3.14159 * 2 = 6.28318
100 - 37 = 63
7 * 8 = 56
999 + 1 = 1000
45 % 7 = 3

Phone numbers: +1 (555) 010-9999, +44 20 7946 0958. Coordinates: 48.8584 N, 2.2945 E. \
Version 3.11.7 was released after 3.11.6; build 20240115.1 passed 1,284 of 1,290 tests (99.53%).
The sequence of primes below 100: 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, \
61, 67, 71, 73, 79, 83, 89, 97.
Powers of two: 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536.
In binary, 255 is 11111111 and 256 is 100000000; in hexadecimal they are 0xFF and 0x100."""

_MULTILINGUAL = """English: The weather is beautiful today, so we decided to walk along the river.
Français : Il fait très beau aujourd'hui, alors nous avons décidé de nous promener le long de la \
rivière. Les enfants ont joué près de l'eau pendant que nous prenions un café.
Deutsch: Das Wetter ist heute wunderschön, deshalb haben wir beschlossen, am Fluss entlang zu \
spazieren. Danach haben wir in einem kleinen Café Kuchen gegessen.
Español: Hoy hace un tiempo precioso, así que decidimos caminar junto al río. Por la tarde \
visitamos el museo y cenamos en una plaza muy animada.
Italiano: Oggi il tempo è bellissimo, quindi abbiamo deciso di passeggiare lungo il fiume e di \
fermarci a mangiare un gelato.
Português: O tempo está lindo hoje, então decidimos caminhar ao longo do rio e almoçar num \
restaurante perto da ponte.
Русский: Сегодня прекрасная погода, поэтому мы решили прогуляться вдоль реки. Вечером мы пили \
чай и разговаривали о путешествиях.
中文：今天天气很好，所以我们决定沿着河边散步。下午我们去了博物馆，晚上在一家小餐馆吃了饭。
日本語：今日はとても良い天気なので、川沿いを散歩することにしました。午後は美術館に行きました。
한국어: 오늘은 날씨가 아주 좋아서 강을 따라 산책하기로 했습니다.
Ελληνικά: Σήμερα ο καιρός είναι υπέροχος, οπότε αποφασίσαμε να περπατήσουμε δίπλα στο ποτάμι.
العربية: الطقس جميل اليوم، لذلك قررنا أن نتمشى على طول النهر.
हिन्दी: आज मौसम बहुत अच्छा है, इसलिए हमने नदी के किनारे टहलने का फैसला किया।
Türkçe: Bugün hava çok güzel, bu yüzden nehir boyunca yürümeye karar verdik.
Polski: Dzisiaj jest piękna pogoda, więc postanowiliśmy pospacerować wzdłuż rzeki.
Nederlands: Het weer is vandaag prachtig, dus we besloten langs de rivier te wandelen."""

_MARKDOWN = """# Getting started with the command-line tool

Install the package and check the version:

```bash
pip install example-tool==2.4.1
example-tool --version
```

## Configuration

The tool reads `config.yaml` from the current directory. A minimal file looks like this:

```yaml
server:
  host: 127.0.0.1
  port: 8080
  workers: 4
logging:
  level: info
  file: /var/log/example-tool.log
```

Options given on the command line override the file. For example, `example-tool --port 9090` \
listens on port 9090 even if the file says 8080.

## Frequently asked questions

**Why does the server refuse to start?** Usually another process already uses the port. Run \
`ss -ltnp` to find it, or pick another port.

**Can I run several workers?** Yes. Set `workers` to the number of CPU cores, or leave it out and \
the tool will choose one worker per core.

> Note: the API returns JSON such as `{"status": "ok", "items": [1, 2, 3]}`. Errors come back \
with an HTTP status of 4xx or 5xx and a `message` field that explains what went wrong."""

FORCED_TEXTS = [
    ("prose", _PROSE, False),
    ("code", _CODE, False),
    ("chat", _CHAT, True),
    ("numbers", _NUMBERS, False),
    ("multilingual", _MULTILINGUAL, False),
    ("markdown", _MARKDOWN, False),
]

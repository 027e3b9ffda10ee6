"""The model catalog's names and counts: every id a catalog file serves (its own, its aliases, its
base model and its variants) resolves and says which file serves it; active parameters follow one
stated convention (the input embedding is a lookup, not counted), checked by hand and against
each MoE publisher's figure."""

from __future__ import annotations

import json
from importlib import resources

import pytest

import llmroofline as lr
from llmroofline.cli import main
from llmroofline.model import (
    ACTIVE_PARAMS_CONVENTION,
    catalog_model,
    known_model_names,
    model_catalog,
)

MODELS = list(model_catalog().values())
MOE = [m for m in MODELS if m.is_moe and m.published_active_params]
ALIASES = {a for m in MODELS for a in m.aliases}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- names ----------------------------------------------------------------------------------------

# The ids the catalog refresh asked for, each with the entry whose config serves it.
SERVED = [
    ("meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct"),
    ("meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct"),
    ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
    ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
    ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct"),
    ("Qwen/Qwen3-8B-Base", "Qwen/Qwen3-8B"),
    ("Qwen/Qwen3-30B-A3B-Instruct-2507", "Qwen/Qwen3-30B-A3B"),
    ("Qwen/Qwen3-Coder-480B-A35B-Instruct", "Qwen/Qwen3-Coder-480B-A35B-Instruct"),
    ("deepseek-ai/DeepSeek-V3.1", "deepseek-ai/DeepSeek-V3.1"),
    ("deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek-ai/DeepSeek-V3.1"),
    ("deepseek-ai/DeepSeek-V3.1-Base", "deepseek-ai/DeepSeek-V3.1"),
    ("zai-org/GLM-4.6", "zai-org/GLM-4.6"),
    ("MiniMaxAI/MiniMax-M2", "MiniMaxAI/MiniMax-M2"),
    ("google/gemma-3-1b-it", "google/gemma-3-1b-it"),
    ("google/gemma-3-1b-pt", "google/gemma-3-1b-it"),
    ("google/gemma-3-4b-pt", "google/gemma-3-4b-it"),
    ("google/gemma-3-12b-it", "google/gemma-3-12b-it"),
    ("google/gemma-3-27b-pt", "google/gemma-3-27b-it"),
    ("google/gemma-2-9b-it", "google/gemma-2-9b"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-v0.1"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x7B-v0.1"),
    ("mistralai/Mistral-Nemo-Instruct-2407", "mistralai/Mistral-Nemo-Base-2407"),
    ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-hf"),
]


@pytest.mark.parametrize("name, entry", SERVED)
def test_asked_ids_resolve_to_their_own_name_and_say_which_file_serves_them(name, entry):
    m = lr.load_model(name)
    assert m.id == name and m.catalog_entry == entry
    assert m.catalog_file == f"catalog/models/{entry.replace('/', '__')}.json"
    assert lr.load_model(name.lower()).id == name  # case-insensitive
    short = name.split("/")[1]
    if short.lower() not in ALIASES:  # an alias wins over a part after the slash (llama-3.1-8b: the instruct model)
        assert lr.load_model(short).id == name
    assert catalog_model(name).id == name  # the web app's resolver: catalog names only
    served = model_catalog()[entry]
    assert (m.num_layers, m.hidden_size, m.num_experts) == (served.num_layers, served.hidden_size, served.num_experts)


def test_every_name_the_catalog_serves_resolves_and_its_file_exists():
    root = resources.files("llmroofline")
    names = known_model_names()
    assert len(names) == len(set(n.lower() for n in names))  # one owner per name
    for spec in MODELS:
        for name in (spec.id, *spec.aliases, *([spec.base_id] if spec.base_id else []), *spec.variants):
            m = lr.load_model(name)
            assert m.catalog_entry == spec.id, name
            assert (root / m.catalog_file).is_file(), m.catalog_file
            assert m.id in (spec.id, spec.base_id, *spec.variants), name
    assert len(names) - len(MODELS) >= 45  # most entries serve a base, instruct or revised id besides their own


def test_a_variant_takes_the_config_fields_it_changes_and_says_so():
    # Mixtral-8x22B-Instruct has the v3 tokenizer: 32,768 tokens instead of 32,000, so its two
    # embedding tables grow by 2 x 768 x 6144 = 9,437,184 parameters.
    base, instruct = lr.load_model("mistralai/Mixtral-8x22B-v0.1"), lr.load_model("mistralai/Mixtral-8x22B-Instruct-v0.1")
    assert (base.vocab_size, instruct.vocab_size) == (32_000, 32_768)
    assert instruct.params_total - base.params_total == 2 * 768 * 6144
    assert "vocab_size" in instruct.config_notes and "Mixtral-8x22B-v0.1" in instruct.config_notes
    # Qwen3 base models were pre-trained at 32,768 tokens; the post-trained ones state 40,960.
    assert lr.load_model("Qwen/Qwen3-8B-Base").max_context == 32_768 < lr.load_model("Qwen/Qwen3-8B").max_context
    # A variant without changed fields is the entry's architecture under its own name.
    it, pt = lr.load_model("google/gemma-2-9b-it"), lr.load_model("google/gemma-2-9b")
    assert it.params_total == pt.params_total and it.weight_bytes() == pt.weight_bytes()
    assert "config fields changed" not in it.config_notes


def test_unknown_ids_still_suggest_near_names():
    with pytest.raises(lr.InputError, match="did you mean .*Qwen/Qwen3-Coder-480B-A35B-Instruct"):
        catalog_model("Qwen/Qwen3-Coder-480B-A35B")
    with pytest.raises(lr.InputError, match="did you mean .*deepseek-ai/DeepSeek-V3.1-Terminus"):
        catalog_model("deepseek-ai/DeepSeek-V3.1-Terminal")


def test_catalog_refuses_a_malformed_variant():
    cfg = model_catalog()["meta-llama/Llama-2-7b-hf"]
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 100}
    assert cfg.variants  # the bundled entry has one
    for bad, message in (([{"id": "o/x"}], "note must be a non-empty string"),
                         ([{"id": "nothing-slashed", "note": "n"}], "Hub id owner/name"),
                         ([{"id": "o/x", "note": "n", "size": 1}], "unknown field"),
                         ([{"id": "o/x", "note": "n", "config": [1]}], "config must be an object"),
                         ("o/x", "variants must be a list")):
        with pytest.raises(lr.InputError, match=message):
            lr.model_from_config(config, model_id="o/m", meta={"id": "o/m", "variants": bad})
    with pytest.raises(lr.InputError, match="published_active_embeddings must be one of both, output, none"):
        lr.model_from_config(config, model_id="o/m", meta={"id": "o/m", "published_active_embeddings": "input"})


# ---- the active-parameter convention ------------------------------------------------------------

def test_gpt_oss_120b_active_count_by_hand_equals_openais_figure():
    # config: 36 layers, hidden 2880, 64 query / 8 KV heads of 64, 128 experts (top 4) of width
    # 2880 with biases, vocabulary 201,088, untied embeddings, attention biases and sinks.
    attention = 2880 * (64 + 2 * 8) * 64 + 64 * 64 * 2880 + (64 + 2 * 8) * 64 + 64  # q,k,v,o + biases + sinks
    assert attention == 26_547_264
    expert = 3 * 2880 * 2880 + 2 * 2880 + 2880  # gate, up, down + their biases
    router = 2880 * 128
    layer = attention + 2 * 2880 + 4 * expert + router  # two norms, four of the experts
    output_head = 201_088 * 2880  # read whole every step; the input table is one row per token
    active = 36 * layer + output_head + 2880  # + final norm
    m = lr.load_model("openai/gpt-oss-120b")
    assert m.params_active == active == 5_132_741_184
    assert m.params_active == pytest.approx(5.13e9, rel=0.001)  # OpenAI's model card: 5.13B active
    assert m.params_active_counting("both") == active + output_head  # the all-weights count: 5.71B
    assert lr.load_model("openai/gpt-oss-20b").params_active == pytest.approx(3.61e9, rel=0.001)  # card: 3.61B


def test_dense_models_leave_out_the_input_table_unless_it_is_tied():
    # Llama-3.1-8B: untied 128,256 x 4096 tables; the input one is a lookup.
    llama = lr.load_model("meta-llama/Llama-3.1-8B")
    assert llama.params_total - llama.params_active == 128_256 * 4096 == 525_336_576
    # Gemma 3 1B ties its table to the output head: read whole there, so every weight is active.
    gemma = lr.load_model("google/gemma-3-1b-it")
    assert gemma.tie_word_embeddings and gemma.params_active == gemma.params_total


# Publishers whose active figure differs from ours by more than ACTIVE_TOLERANCE, and why.
ACTIVE_TOLERANCE = 0.03
ACTIVE_OUTLIERS = {
    "Qwen/Qwen3-30B-A3B": "Qwen counts both embedding tables (0.31B more than ours) in its 3.3B",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "Meta counts both embedding tables (1.03B more) in its 17B",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "Meta counts both embedding tables (1.03B more) in its 17B",
    "zai-org/GLM-4.5-Air": "GLM leaves out the output head too (0.62B) from its 12B",
    "MiniMaxAI/MiniMax-M2": "published as the label '10B'; ours 10.4B, 9.8B without the output head",
    "Qwen/Qwen3-Next-80B-A3B-Instruct": "published as the label '3B' (A3B); ours 3.56B, 3.25B without the output head",
}
ROUNDED_LABEL = {"MiniMaxAI/MiniMax-M2": 0.05, "Qwen/Qwen3-Next-80B-A3B-Instruct": 0.2}  # '10B' for 10.4B; '3B' for 3.56B


@pytest.mark.parametrize("model", MOE, ids=lambda m: m.id)
def test_active_count_against_the_published_figure(model):
    published = model.published_active_params
    ours = model.params_active / published - 1
    if model.id in ACTIVE_OUTLIERS:
        assert abs(ours) > ACTIVE_TOLERANCE  # still an outlier, or the entry no longer needs its reason
    else:
        assert abs(ours) <= ACTIVE_TOLERANCE, (model.id, ours)
    if model.published_active_embeddings:
        # Counted the publisher's way (its arithmetic shows which tables it counts), ours matches.
        counted = model.params_active_counting(model.published_active_embeddings)
        assert counted == pytest.approx(published, rel=0.02), model.params_source
        assert abs(counted - published) <= abs(model.params_active - published)  # the convention explains the gap
        assert "Counting:" in model.params_source
    else:
        assert model.id not in ACTIVE_OUTLIERS or model.id in ROUNDED_LABEL
        assert ours == pytest.approx(0, abs=ROUNDED_LABEL.get(model.id, ACTIVE_TOLERANCE))


def test_every_bundled_moe_model_has_a_published_active_figure():
    assert {m.id for m in model_catalog().values() if m.is_moe} == {m.id for m in MOE}
    assert set(ACTIVE_OUTLIERS) <= {m.id for m in MOE}


def test_models_show_states_the_convention_and_the_publishers_figure(capsys):
    code, out, _ = run(capsys, "models", "show", "deepseek-ai/DeepSeek-V3.1-Terminus", "--json")
    assert code == 0
    s = json.loads(out)
    assert s["id"] == "deepseek-ai/DeepSeek-V3.1-Terminus" and s["catalog_entry"] == "deepseek-ai/DeepSeek-V3.1"
    assert s["catalog_file"] == "catalog/models/deepseek-ai__DeepSeek-V3.1.json"
    assert s["params_active_convention"] == ACTIVE_PARAMS_CONVENTION and "input embedding" in ACTIVE_PARAMS_CONVENTION
    assert s["published_active_params"] == 37e9
    assert s["params_active_vs_published"] == pytest.approx(s["params_active"] / 37e9 - 1)
    assert s["params_total_vs_published"] == pytest.approx(s["params_total"] / 671e9 - 1)
    code, out, _ = run(capsys, "models", "show", "Qwen/Qwen3-30B-A3B", "--json")
    s = json.loads(out)
    # Qwen's 3.3B counts both tables: ours plus the 151,936 x 2048 input table.
    assert s["params_active_counted_as_published"] == s["params_active"] + 151_936 * 2048
    assert s["published_active_embeddings"] == "both"
    code, out, _ = run(capsys, "models", "show", "openai/gpt-oss-120b")
    assert code == 0
    assert "params_active_convention" in out and "input embedding" in out and "+0.1%" in out
    assert "catalog/models/openai__gpt-oss-120b.json" in out
    code, out, _ = run(capsys, "models", "list", "--json")
    listed = {e["id"]: e for e in json.loads(out)}
    assert listed["meta-llama/Llama-3.1-70B-Instruct"]["serves"] == ["meta-llama/Llama-3.1-70B"]
    assert listed["deepseek-ai/DeepSeek-V3.1"]["serves"] == ["deepseek-ai/DeepSeek-V3.1-Base",
                                                             "deepseek-ai/DeepSeek-V3.1-Terminus"]


# ---- the new entries -----------------------------------------------------------------------------

def test_minimax_m2_experts_are_fp8_and_its_router_16_bit():
    # modules_to_not_convert ["gate", ...] names MiniMax's router (block_sparse_moe.gate); its
    # experts are w1/w2/w3, so "gate" does not reach them.
    m = lr.load_model("minimax-m2")
    wp = m.weight_precision()
    assert wp.experts.precision == "fp8" and wp.attention.precision == "fp8"
    assert wp.router.precision == "bf16" and wp.embeddings.precision == "bf16"
    assert m.num_moe_layers == m.num_layers == 62 and m.num_sliding_layers == 0 and m.num_experts == 256
    assert m.moe_intermediate_size == 1536 and m.shared_expert_intermediate_size == 0


def test_gemma_3_text_towers_match_the_report():
    # Gemma 3 report, Table 1: embedding + non-embedding parameters of the language model.
    for name, embedding, non_embedding in (("google/gemma-3-1b-it", 302e6, 698e6),
                                           ("google/gemma-3-4b-it", 675e6, 3209e6),
                                           ("google/gemma-3-12b-it", 1012e6, 10759e6)):
        m = lr.load_model(name)
        assert m.vocab_size * m.hidden_size == pytest.approx(embedding, rel=0.01)
        language = m.params_total - (m.vision.params if m.vision else 0)  # 4B and 12B carry SigLIP (417M)
        assert language - m.vocab_size * m.hidden_size == pytest.approx(non_embedding, rel=0.005)
        assert m.num_global_layers == m.num_layers // 6  # five local layers per global one

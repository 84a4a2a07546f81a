"""Checks of falcon-run's text mode against examples/falcon-mini's golden data (standard library only).

  check_text.py prompt GOLDEN N               print prompt N of GOLDEN (golden.json), no newline
  check_text.py generated IDS GOLDEN N        IDS (falcon-run --output-ids) equals prompt N's
                                              transformers greedy ids
  check_text.py perplexity OUTPUT REF TOL     the last line of OUTPUT (falcon-run --perplexity)
                                              has REF's (perplexity.json) token, scored-token and
                                              window counts and its perplexity within TOL relative
  check_text.py set-eos ART GOLDEN N INDEX    make ART/generation_config.json's eos_token_id the
                                              INDEX-th greedy id of prompt N; prints it
  check_text.py stopped FULL OUT STOP         OUT (a run with --stop STOP) is FULL's text up to
                                              the first STOP, then a newline
  check_text.py chat ART N MESSAGE...         `falcon-run ART --interactive --max-new-tokens N`
                                              on the MESSAGEs answers each as a single
                                              `--prompt-file` run on the conversation so far
"""

import json
import os
import re
import subprocess
import sys
import tempfile


def run_text(art, prompt, new_tokens):
    """falcon-run's streamed answer to one text prompt, as a chat turn stops."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(prompt)
    try:
        out = subprocess.run(["falcon-run", art, "--prompt-file", f.name, "--max-new-tokens",
                              str(new_tokens), "--stop", "\nUser:"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return out[:-1]  # the final newline


def main():
    command = sys.argv[1]
    if command == "prompt":
        golden = json.load(open(sys.argv[2]))
        sys.stdout.write(golden["prompts"][int(sys.argv[3])]["prompt"])
    elif command == "generated":
        ours = [int(x) for x in open(sys.argv[2]).read().split()]
        golden = json.load(open(sys.argv[3]))
        expected = golden["prompts"][int(sys.argv[4])]["generated_ids"]
        if ours != expected:
            sys.exit(f"FAIL: generated {ours}, transformers generated {expected}")
        print(f"{len(ours)} generated ids match transformers")
    elif command == "perplexity":
        last = open(sys.argv[2]).read().splitlines()[-1]
        match = re.fullmatch(r"perplexity: ([0-9.]+) \(tokens (\d+), scored (\d+), windows (\d+)\)",
                             last)
        if not match:
            sys.exit(f"FAIL: unexpected last line {last!r}")
        ref = json.load(open(sys.argv[3]))
        tolerance = float(sys.argv[4])
        ours = float(match.group(1))
        counts = tuple(int(match.group(i)) for i in (2, 3, 4))
        expected = (ref["tokens"], ref["scored_tokens"], ref["windows"])
        if counts != expected:
            sys.exit(f"FAIL: tokens/scored/windows {counts}, transformers {expected}")
        relative = abs(ours - ref["perplexity"]) / ref["perplexity"]
        print(f"perplexity {ours} vs transformers {ref['perplexity']:.6f}: "
              f"relative difference {relative:.2e}")
        if not relative <= tolerance:
            sys.exit(f"FAIL: relative difference {relative:.2e} exceeds {tolerance}")
    elif command == "set-eos":
        art, golden = sys.argv[2], json.load(open(sys.argv[3]))
        eos = golden["prompts"][int(sys.argv[4])]["generated_ids"][int(sys.argv[5])]
        with open(os.path.join(art, "generation_config.json"), "w") as f:
            json.dump({"eos_token_id": [eos, 0]}, f)
        print(eos)
    elif command == "stopped":
        full, out, stop = (open(sys.argv[2]).read(), open(sys.argv[3]).read(),
                           sys.argv[4].encode().decode("unicode_escape"))
        if stop not in full:
            sys.exit(f"FAIL: {stop!r} is not in the full text")
        expected = full[:full.index(stop)] + "\n"
        if out != expected:
            sys.exit(f"FAIL: {out!r} != {expected!r}")
        print(f"stopped before {stop!r} after {len(out) - 1} characters")
    elif command == "chat":
        art, new_tokens, messages = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
        chat = subprocess.run(["falcon-run", art, "--interactive", "--max-new-tokens",
                               str(new_tokens)], input="".join(m + "\n" for m in messages),
                              check=True, capture_output=True, text=True).stdout
        conversation, expected = "", ""
        for message in messages:
            turn = f"User: {message}\nFalcon:"
            answer = run_text(art, conversation + turn, new_tokens)
            expected += answer + "\n"
            conversation += turn + answer + "\n"
        if chat != expected:
            sys.exit(f"FAIL: the chat answered {chat!r}, single runs {expected!r}")
        print(f"{len(messages)} answers match")
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# Regenerates llamacpp_vectors.txt by running llama.cpp's llama-tokenize (the encode oracle for test_tokenizer).
import os, struct, subprocess, sys, tempfile

# --- minimal GGUF v3 metadata reader/writer, to make vocab variants of stories260K.gguf ---
T_U32,T_I32,T_F32,T_BOOL,T_STR,T_ARR=4,5,6,7,8,9
SZ={0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
def read_kv(path):
    f=open(path,'rb').read(); o=[0]
    def rd(fmt):
        v=struct.unpack_from('<'+fmt,f,o[0]); o[0]+=struct.calcsize('<'+fmt); return v[0]
    def rs():
        n=rd('Q'); s=f[o[0]:o[0]+n]; o[0]+=n; return s
    def val(t):
        if t==8: return rs()
        if t==9:
            et=rd('I'); n=rd('Q'); return (et,[val(et) for _ in range(n)])
        return rd(SZ[t])
    rd('I'); rd('I'); rd('Q'); nkv=rd('Q')
    kv=[]
    for _ in range(nkv):
        k=rs().decode(); t=rd('I'); kv.append([k,t,val(t)])
    return kv
def write(path, kv):
    out=bytearray(b'GGUF'+struct.pack('<IQQ',3,0,len(kv)))
    def ws(s):
        if isinstance(s,str): s=s.encode()
        out.extend(struct.pack('<Q',len(s))+s)
    def wv(t,v):
        if t==8: ws(v)
        elif t==9:
            et,items=v; out.extend(struct.pack('<IQ',et,len(items)))
            for x in items: wv(et,x)
        else: out.extend(struct.pack('<'+SZ[t],v))
    for k,t,v in kv:
        ws(k); out.extend(struct.pack('<I',t)); wv(t,v)
    while len(out)%32: out.append(0)
    open(path,'wb').write(out)

# --- the vectors ---
# Usage: make_llamacpp_vectors.py LLAMA_BIN_DIR OUT_FILE VERSION_TEXT [MODELS_DIR]
BIN = sys.argv[1]; OUT = sys.argv[2]; VERSION = sys.argv[3]
MODELS = sys.argv[4] if len(sys.argv) > 4 else '../shared/models'
STORIES = MODELS + '/stories260K.gguf'
# The README's first fenced block (the golden story), as tests/test_support.cpp reads it.
story = open(MODELS + '/README.md', encoding='utf-8').read().split('```')[1].strip('\n').encode()
TMP = tempfile.mkdtemp()
S = [
 b"Once upon a time, there was a little girl named Lily.",
 b"She loved to play outside in the park. One day, she saw a big, red ball.",
 b"Lily's mom said, \"Lily, let's go to the park.\"",
 b"The quick brown fox jumps over the lazy dog.",
 b"", b" ", b"  ", b"    ", b"a", b"A", b"\n", b"\n\n\n",
 b"   leading spaces", b"trailing spaces   ", b"multiple    spaces   between  words",
 b" hello", b"hello ", b"line one\nline two\n\nline four\n", b"\ttab\tseparated\t", b"tabs\tand\r\ncrlf",
 b"Hello, world! How are you? I'm fine; thanks: (really) [yes] {no} <maybe> @home #tag ~x ^y `z`.",
 b"12345 67890 3.14159 -42 +7 100% $5 1,000,000 2024-01-01",
 "café".encode(), "naïve résumé façade".encode(), "日本語".encode(), "emoji 😀 and 🎉!".encode(),
 "😀".encode(), "Ünïcödé ßtraße Ωmega ≈ ∑ √".encode(),
 "“curly quotes” and ‘single’ — dashes – and … ellipsis ™ € ñ".encode(),
 b"<s> literal </s> tags <unk> <0x41>",
 "\u00a0non-breaking\u00a0space".encode(), "▁already ▁escaped▁".encode(),
 b"ALL CAPS SHOUTING", b"mixedCASE camelCase snake_case kebab-case",
 b"aaaaaaaaaaaaaaaaaaaaa", b"Sooo goooood! Hellllo wooorld, I'm sooo happy.", b"aooo tlllm hooo", b"ooooooo lllllll", b"the the the the", b"ababababab", b"eeeeeeee eeeeeee",
 b"invalid \xff\xfe bytes \xc3 and \xe6\x97 truncated", b"\x80\x80", b"\xf0\x9f\x98",
 b"control \x01\x02\x7f chars",
 b"Tim and Sue were best friends. They liked to play with their toys and run in the sun. \"Look!\" said Tim.",
 story, story * 10,
]
USERDEF = [
 b"hello <|user|> world", b"<|user|>", b"<|user|>Hi<extra_1>", b"abc ab xab", b"<|user|> <extra_1>  ab",
 b"no special here", b"", b" ", b"a<extra_1>", b"<extra_1><extra_1>",
]
NOPREFIX = [b"Once upon a time", b" Once upon a time", b"", b" ", b"hello  world", "café 😀".encode()]

def esc(b):
    s = b.decode('utf-8', errors='surrogateescape'); out=[]
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF: out.append('\\x%02X' % (o - 0xDC00))
        elif ch == '\\': out.append('\\\\')
        elif ch == '\n': out.append('\\n')
        elif ch == '\t': out.append('\\t')
        elif ch == '\r': out.append('\\r')
        elif o < 0x20 or o == 0x7f: out.append('\\x%02X' % o)
        else: out.append(ch)
    return ''.join(out)

def tok(model, text, bos):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(text); name = f.name
    args = [BIN + '/llama-tokenize', '-m', model, '-f', name, '--ids', '--no-escape', '--no-parse-special', '--log-disable']
    if not bos: args.append('--no-bos')
    r = subprocess.run(args, capture_output=True)
    os.unlink(name)
    if r.returncode != 0: raise SystemExit(r.stderr.decode(errors='replace'))
    line = [l for l in r.stdout.decode().splitlines() if l.startswith('[')][-1]
    return [int(x) for x in line.strip('[]').split(',') if x.strip()]

def variant(path, extra_tokens=(), flags=()):
    kv = read_kv(STORIES)
    d = {k: i for i, (k, t, v) in enumerate(kv)}
    if extra_tokens:
        kv[d['tokenizer.ggml.tokens']][2][1].extend(extra_tokens)
        kv[d['tokenizer.ggml.scores']][2][1].extend([0.0] * len(extra_tokens))
        kv[d['tokenizer.ggml.token_type']][2][1].extend([4] * len(extra_tokens))
    for k, v in flags: kv.append([k, T_BOOL, v])
    write(path, kv)
    return path

lines = []
def section(name, model, strings):
    lines.append('[%s]' % name)
    for s in strings:
        a = tok(model, s, True); b = tok(model, s, False)
        lines.append('%s\t%s\t%s' % (esc(s), ' '.join(map(str, a)), ' '.join(map(str, b))))
section('stories260K', STORIES, S)
section('stories260K+userdef', variant(TMP + '/userdef.gguf', [b'<|user|>', b'<extra_1>', b'ab']), USERDEF)
section('stories260K+noprefix', variant(TMP + '/noprefix.gguf', flags=[('tokenizer.ggml.add_space_prefix', False), ('tokenizer.ggml.add_bos_token', False)]), NOPREFIX)
hdr = f"""# Expected token ids from llama.cpp's own SPM tokenizer, used as the encode oracle by tests/test_tokenizer.cpp.
# Produced with llama-tokenize from llama.cpp {VERSION} (the git bundle in npm node-llama-cpp@3.22.1, built by
# ../shared/tools/llamacpp-anchor, target llama-tokenize), for each text written raw to a file:
#   llama-tokenize -m MODEL -f TEXTFILE --ids --no-escape --no-parse-special --log-disable [--no-bos]
# Sections: [stories260K] is ../shared/models/stories260K.gguf as is. [stories260K+userdef] is that vocab with
# three type-4 (user-defined) tokens appended: "<|user|>" (512), "<extra_1>" (513), "ab" (514), score 0.
# [stories260K+noprefix] is that vocab with tokenizer.ggml.add_space_prefix = false and add_bos_token = false.
# Line format: TEXT<TAB>IDS_DEFAULT<TAB>IDS_NO_BOS. TEXT escapes \\\\ \\t \\n \\r and \\xHH (control and invalid bytes);
# IDS_DEFAULT is llama-tokenize without --no-bos (BOS only when the model's add_bos says so).
# Regenerate: python3 tests/data/tokenizer/make_llamacpp_vectors.py "$(../shared/tools/llamacpp-anchor)" \\
#   tests/data/tokenizer/llamacpp_vectors.txt 'VERSION' (after cmake --build <anchor build> --target llama-tokenize).
"""
open(OUT, 'w').write(hdr + '\n'.join(lines) + '\n')
print('wrote', len(lines), 'lines')

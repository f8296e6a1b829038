// The Jinja interpreter piece by piece: small templates compared with jinja2 (whitespace control,
// scoping, loops, macros, filters, tests, Python value printing), and each error path.
#include <doctest/doctest.h>

#include <specd/error.h>

#include <fstream>

#include "chat/chat_template.h"
#include "tests/chat_oracle.h"
#include "tests/test_support.h"

using nlohmann::json;
using specd::Result;
using specd::chat::ChatTemplate;

namespace {

// Each snippet renders with this context, in specd and in jinja2.
const json kContext = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Yo"}}})},
                       {"add_generation_prompt", true},
                       {"d", {{"b", 1}, {"a", json::array({1, 2.5, "x", nullptr, true})}, {"C", "z"}}},
                       {"n", 7},
                       {"f", 0.1},
                       {"s", "  Hello World  "}};

const char* const kSnippets[] = {
    // whitespace control: trim_blocks, lstrip_blocks, -, +, comments
    "a\n  {% if true %}\n    b\n  {% endif %}\nc\n",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "x\n    {%+ if true %}y{% endif %}\n{# note #}\nz  {#- c -#}  w\n",
    "{{ 'a' }}\n{{ 'b' -}}\n\n  {{ 'c' }}\n",
    "  {% for m in messages %}\n  [{{ m.role }}]\n  {% endfor %}\n",
    "line\r\nnext\r\n{% if true %}\r\nin\r\n{% endif %}\r\n",
    // printing Python values
    "{{ d }}|{{ d.a }}|{{ [1, 'it\\'s', \"q\\\"\"] }}|{{ none }}|{{ true }}|{{ f }}|{{ 1e20 }}|{{ 3 / 2 }}|{{ 7 // 2 }}|{{ -7 % 3 }}",
    "{{ (1, 2) }}{{ 2 ** 10 }}{{ 'ab' * 3 }}{{ 1 + 2.0 }}{{ 1.5e-7 }}{{ 100.0 }}",
    // loops, scoping, namespace
    "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}"
    "{% if loop.previtem is defined %}{{ loop.previtem.role }}{% endif %}{% endfor %}",
    "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}",
    "{% for i in range(5) if i is odd %}{{ i }}{% else %}none{% endfor %}{% for i in [] %}x{% else %}empty{% endfor %}",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | dictsort %}{{ k }}{% endfor %}",
    "{% for c in 'héllo' %}{{ c }}.{% endfor %}{{ 'héllo'[1] }}{{ 'héllo'[::-1] }}{{ [1,2,3][1:] }}{{ [1,2,3][-1] }}",
    // macros
    "{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(1, c=3) }}",
    "{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}",
    "{% set t %}block {{ n }}{% endset %}[{{ t }}]{% filter upper %}up {{ s }}{% endfilter %}",
    // filters
    "{{ s | trim }}|{{ s | length }}|{{ s | upper }}|{{ s | lower }}|{{ 'ab cd' | title }}|{{ 'aBC' | capitalize }}",
    "{{ [3, 1, 2] | sort | join(',') }}|{{ ['b', 'A', 'a'] | unique | list }}|{{ [3, 1] | min }}{{ [3, 1] | max }}",
    "{{ messages | map(attribute='role') | join(', ') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}",
    "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='content') | first }}|{{ [1, 2, 3] | select('odd') | list }}",
    "{{ [1, 2, 3] | reject('equalto', 2) | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ messages | last }}",
    "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\\n' | tojson }}|{{ d.a | tojson(separators=(',', ':')) }}",
    "{{ undefined_thing | default('dflt') }}|{{ '' | default('e', true) }}|{{ none | string }}|{{ '42' | int + 1 }}|{{ '3.5' | float }}",
    "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, first=true) }}|{{ 'x-y' | replace('-', '+') }}|{{ d | items | list }}",
    "{{ [{'t': 'b'}, {'t': 'a'}] | sort(attribute='t') }}|{{ [1, 2] | sum }}|{{ [1, 2] | reverse | list }}",
    // tests and operators
    "{{ n is number }}{{ true is number }}{{ s is string }}{{ d is mapping }}{{ d is iterable }}{{ undefined_thing is iterable }}"
    "{{ d.a is sequence }}{{ none is none }}{{ n is integer }}{{ f is float }}{{ true is boolean }}{{ n is divisibleby 7 }}",
    "{{ 'a' in 'abc' }}{{ 2 in [1, 2] }}{{ 'b' in d }}{{ 'q' not in d }}{{ x is not defined }}{{ 1 < 2 < 3 }}{{ 'a' ~ 1 ~ none }}",
    "{{ 'yes' if n > 3 else 'no' }}|{{ 'x' if false }}|{{ n and 'and' }}|{{ 0 or 'or' }}|{{ not n }}|{{ -n }}",
    // str and dict methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'xx-ab-xx'.strip('x') }}",
    "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'a{}c{}'.format(1, 'z') }}{{ '-'.join(['a', 'b']) }}",
    "{{ d.get('b') }}{{ d.get('zz', 'none') }}{{ d.get('zz') }}{{ d.keys() | list }}{{ d['a'][1] }}{{ d.a.1 }}{{ d['missing'] }}",
    "{{ messages[0]['content'] }}{{ messages[0].content }}{{ messages[-1].role | upper }}{{ strftime_now('%Y-%m-%d %b %A') }}",
    "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set x = {'k': [1, {'z': none}]} %}{{ x }}{{ x.k[1].z }}",
    "{% generation %}gen {{ n }}{% endgeneration %}",
    // for-else runs when no iteration finished its body (jinja2 clears its flag at the body's end)
    "{% for i in [1, 2] %}{% continue %}{% else %}E1{% endfor %}{% for i in [1] %}{% break %}{% else %}E2{% endfor %}"
    "{% for i in [1, 2] %}{% if i == 1 %}{% continue %}{% endif %}{% else %}E3{% endfor %}",
    // filter and set blocks have their own scope; break/continue inside them leave the loop
    "{% set x = 1 %}{% filter upper %}{% set x = 2 %}{{ x }}{% endfilter %}{{ x }}{% set y %}{% set x = 3 %}{% endset %}{{ x }}"
    "{% for i in [1, 2, 3] %}{% filter upper %}a{% if i == 2 %}{% continue %}{% endif %}{% endfilter %}{{ i }}{% endfor %}",
    "{{ ['a\\u200bb', 'x\\xa0y', 'é中😀«»—', '\\x85', '\\u3000', 'tab\\there', \"it's\", '\\\\'] }}",
    "{% set g = {0: 'a', 512: 'b', 64: 'c'} %}{{ g }}{{ g[512] }}{{ g | dictsort }}{{ 64 in g }}{{ g | tojson }}{{ g.get(0) }}",
    "{{ d.items() }}|{{ d.keys() }}|{{ (1,) }}|{{ () }}|{{ [1] + [2] }}|{{ d.items() | list | length }}|{{ [1, 2] | map('string') | join }}",
    "{{ 'a'|safe + '<b>' }}|{{ '<i>' + 'x'|safe }}|{{ ('a'|safe + '&') | upper }}|{{ 'q' ~ ('<'|safe) }}",
};

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

Result<std::string> render(std::string_view src, const json& ctx = kContext) {
  auto t = ChatTemplate::parse(src);
  if (!t) return t.error();
  return t->render(ctx);
}

}  // namespace

TEST_CASE("chat template snippets render as jinja2 does") {
  std::vector<specd::test::OracleJob> jobs;
  const std::string dir = specd::test::temp_dir();
  for (size_t k = 0; k < std::size(kSnippets); ++k) {
    jobs.push_back({dir + "/snippet" + std::to_string(k) + ".jinja", kContext});
    write(jobs.back().template_path, kSnippets[k]);
  }
  const auto want = specd::test::run_oracle(jobs);
  std::tm now{};
  specd::test::oracle_now(&now);
  for (size_t k = 0; k < std::size(kSnippets); ++k) {
    CAPTURE(kSnippets[k]);
    REQUIRE_MESSAGE(want[k].ok, want[k].text);
    auto t = ChatTemplate::parse(kSnippets[k]);
    REQUIRE_MESSAGE(t, t.error().message);
    auto got = t->render(kContext, now);
    REQUIRE_MESSAGE(got, got.error().message);
    CHECK(got.value() == want[k].text);
  }
}

TEST_CASE("chat template: the default template is ChatML") {
  auto got = render(specd::chat::default_template_source());
  REQUIRE(got);
  CHECK(got.value() == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>assistant\n");
  const std::string path = specd::test::temp_dir() + "/chatml.jinja";
  write(path, std::string(specd::chat::default_template_source()));
  const auto want = specd::test::run_oracle({{path, kContext}});
  REQUIRE(want[0].ok);
  CHECK(got.value() == want[0].text);
}

TEST_CASE("chat template errors name the construct and the line") {
  SUBCASE("unknown filter") {
    auto r = render("a\n{{ x | frobnicate }}");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_UNSUPPORTED);
    CHECK(r.error().message == "chat template line 2: unsupported filter 'frobnicate'");
  }
  SUBCASE("unknown test and tag") {
    auto r = render("{% if x is frob %}{% endif %}");
    REQUIRE(!r);
    CHECK(r.error().message == "chat template line 1: unsupported test 'frob'");
    r = render("\n\n{% include 'x' %}");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_UNSUPPORTED);
    CHECK(r.error().message == "chat template line 3: unsupported tag 'include'");
  }
  SUBCASE("unterminated block and tag") {
    auto r = render("x\n{% for m in messages %}\n{{ m }}\n");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_UNSUPPORTED);
    CHECK(r.error().message ==
          "chat template line 2: unterminated 'for' block opened on line 2 (expected 'else' before the end of the template)");
    r = render("x\n\n{{ m ");
    REQUIRE(!r);
    CHECK(r.error().message == "chat template line 3: unterminated '{{'");
    r = render("{% if true %}\n{% if false %}{% endif %}x");
    REQUIRE(!r);
    CHECK(r.error().message.find("chat template line 1: unterminated 'if' block opened on line 1") == 0);
  }
  SUBCASE("raise_exception gives the template's own message") {
    auto r = render("{{ raise_exception('Conversation roles must alternate') }}");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_INVALID_ARG);
    CHECK(r.error().message == "Conversation roles must alternate");
  }
  SUBCASE("attribute of an undefined value") {
    auto r = render("x\n{{ nothing.role }}");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_INVALID_ARG);
    CHECK(r.error().message == "chat template line 2: 'nothing' is undefined");
  }
  SUBCASE("sandbox: lists are immutable") {
    auto r = render("{% set l = [] %}{% set _ = l.append(1) %}");
    REQUIRE(!r);
    CHECK(r.error().code == SPECD_E_INVALID_ARG);
  }
  SUBCASE("break outside a loop") {
    auto r = render("{% break %}");
    REQUIRE(!r);
    CHECK(r.error().message == "chat template line 1: 'break' outside a for loop");
  }
}

TEST_CASE("chat template limits stop hostile templates with a named error") {
  std::string deep;
  for (int k = 0; k < 5000; ++k) deep += "{% if true %}";
  auto r = render(deep);
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_LIMIT);
  r = render("{% set ns = namespace(a=1) %}{% set ns.a = [ns] %}");
  REQUIRE(!r);
  CHECK(r.error().code == SPECD_E_UNSUPPORTED);
}

// Jinja expressions into Expr trees (see jinja_expr_parser.h for the precedence).
#include "chat/jinja_expr_parser.h"

#include <specd/error.h>

#include <cerrno>
#include <cstdlib>

#include "chat/jinja_builtins.h"
#include "chat/jinja_parser.h"

namespace specd::chat::jinja {

ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

void ExprParser::error(int line, const std::string& what) const {
  std::string m = "chat template line ";
  m.append(std::to_string(line)).append(": ").append(what);
  fail(SPECD_E_UNSUPPORTED, m, line);
}

std::string ExprParser::describe(const Token& t) {
  switch (t.type) {
    case Tok::End: return "end of template";
    case Tok::VarEnd: return "'}}'";
    case Tok::BlockEnd: return "'%}'";
    case Tok::VarBegin: return "'{{'";
    case Tok::BlockBegin: return "'{%'";
    case Tok::Text: return "template text";
    case Tok::String: return "string '" + t.text + "'";
    default: return "'" + t.text + "'";
  }
}

const Token& ExprParser::expect_type(Tok type, const char* what) {
  if (peek().type != type) {
    std::string m = "expected ";
    m.append(what).append(", found ").append(describe(peek()));
    error(peek().line, m);
  }
  return next();
}

void ExprParser::expect_op(const char* op) {
  if (!accept_op(op)) error(peek().line, std::string("expected '") + op + "'");
}

void ExprParser::expect_name(const char* name) {
  if (!accept_name(name)) error(peek().line, std::string("expected '") + name + "'");
}

bool ExprParser::accept_op(const char* op) {
  if (peek().type != Tok::Op || peek().text != op) return false;
  next();
  return true;
}

bool ExprParser::accept_name(const char* name) {
  if (peek().type != Tok::Name || peek().text != name) return false;
  next();
  return true;
}

ExprPtr ExprParser::tuple(bool with_condexpr) {
  const int line = peek().line;
  ExprPtr first = expression(with_condexpr);
  if (!(peek().type == Tok::Op && peek().text == ",")) return first;
  auto t = make_expr(ExprKind::Tuple, line);
  t->args.push_back(std::move(first));
  while (accept_op(",")) {
    if (peek().type == Tok::VarEnd || peek().type == Tok::BlockEnd || (peek().type == Tok::Op && peek().text == ")")) break;
    t->args.push_back(expression(with_condexpr));
  }
  return t;
}

ExprPtr ExprParser::expression(bool with_condexpr) {
  if (++depth_ > kMaxNesting) fail(SPECD_E_LIMIT, "chat template: expressions nest too deep");
  ExprPtr e = with_condexpr ? condexpr() : or_expr();
  --depth_;
  return e;
}

ExprPtr ExprParser::condexpr() {
  ExprPtr e = or_expr();
  while (peek().type == Tok::Name && peek().text == "if") {
    const int line = next().line;
    auto c = make_expr(ExprKind::Cond, line);
    c->args.push_back(std::move(e));
    c->args.push_back(or_expr());
    c->args.push_back(accept_name("else") ? condexpr() : nullptr);
    e = std::move(c);
  }
  return e;
}

ExprPtr ExprParser::binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
  auto b = make_expr(ExprKind::Binary, line);
  b->name = op;
  b->args.push_back(std::move(l));
  b->args.push_back(std::move(r));
  return b;
}

ExprPtr ExprParser::or_expr() {
  ExprPtr e = and_expr();
  while (peek().type == Tok::Name && peek().text == "or") e = binary("or", std::move(e), (next(), and_expr()), line_of_prev());
  return e;
}

ExprPtr ExprParser::and_expr() {
  ExprPtr e = not_expr();
  while (peek().type == Tok::Name && peek().text == "and") e = binary("and", std::move(e), (next(), not_expr()), line_of_prev());
  return e;
}

ExprPtr ExprParser::not_expr() {
  if (peek().type == Tok::Name && peek().text == "not") {
    auto u = make_expr(ExprKind::Unary, next().line);
    u->name = "not";
    if (++depth_ > kMaxNesting) fail(SPECD_E_LIMIT, "chat template: expressions nest too deep");
    u->args.push_back(not_expr());
    --depth_;
    return u;
  }
  return compare();
}

ExprPtr ExprParser::compare() {
  const int line = peek().line;
  ExprPtr first = math1();
  auto c = make_expr(ExprKind::Compare, line);
  while (true) {
    const Token& t = peek();
    if (t.type == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
      c->ops.push_back(next().text);
    } else if (t.type == Tok::Name && t.text == "in") {
      next();
      c->ops.push_back("in");
    } else if (t.type == Tok::Name && t.text == "not" && p_ + 1 < t_.size() && t_[p_ + 1].type == Tok::Name &&
               t_[p_ + 1].text == "in") {
      next();
      next();
      c->ops.push_back("not in");
    } else {
      break;
    }
    if (c->args.empty()) c->args.push_back(std::move(first));
    c->args.push_back(math1());
  }
  return c->args.empty() ? std::move(first) : std::move(c);
}

ExprPtr ExprParser::math1() {
  ExprPtr e = concat();
  while (peek().type == Tok::Op && (peek().text == "+" || peek().text == "-")) {
    const std::string op = next().text;
    e = binary(op, std::move(e), concat(), line_of_prev());
  }
  return e;
}

ExprPtr ExprParser::concat() {
  ExprPtr e = math2();
  while (accept_op("~")) e = binary("~", std::move(e), math2(), line_of_prev());
  return e;
}

ExprPtr ExprParser::math2() {
  ExprPtr e = pow();
  while (peek().type == Tok::Op && (peek().text == "*" || peek().text == "/" || peek().text == "//" || peek().text == "%")) {
    const std::string op = next().text;
    e = binary(op, std::move(e), pow(), line_of_prev());
  }
  return e;
}

ExprPtr ExprParser::pow() {
  ExprPtr e = unary(true);
  while (accept_op("**")) e = binary("**", std::move(e), unary(true), line_of_prev());
  return e;
}

ExprPtr ExprParser::unary(bool with_filter) {
  ExprPtr e;
  if (peek().type == Tok::Op && (peek().text == "-" || peek().text == "+")) {
    e = make_expr(ExprKind::Unary, peek().line);
    e->name = next().text;
    if (++depth_ > kMaxNesting) fail(SPECD_E_LIMIT, "chat template: expressions nest too deep");
    e->args.push_back(unary(false));
    --depth_;
  } else {
    e = primary();
  }
  e = postfix(std::move(e));
  return with_filter ? filter_expr(std::move(e)) : std::move(e);
}

ExprPtr ExprParser::primary() {
  const Token t = next();
  auto lit = [&](Value v) {
    auto e = make_expr(ExprKind::Literal, t.line);
    e->literal = std::move(v);
    return e;
  };
  switch (t.type) {
    case Tok::Name:
      if (t.text == "true" || t.text == "True") return lit(Value::boolean(true));
      if (t.text == "false" || t.text == "False") return lit(Value::boolean(false));
      if (t.text == "none" || t.text == "None") return lit(Value::none());
      {
        auto e = make_expr(ExprKind::Name, t.line);
        e->name = t.text;
        return e;
      }
    case Tok::String: {
      std::string s = t.text;
      while (peek().type == Tok::String) s += next().text;  // adjacent literals concatenate
      return lit(Value::str(std::move(s)));
    }
    case Tok::Int: {
      errno = 0;
      const long long v = std::strtoll(t.text.c_str(), nullptr, 10);
      if (errno == ERANGE) error(t.line, "integer literal out of range");
      return lit(Value::integer(v));
    }
    case Tok::Float: return lit(Value::real(std::strtod(t.text.c_str(), nullptr)));
    case Tok::Op:
      if (t.text == "(") {
        if (accept_op(")")) return make_expr(ExprKind::Tuple, t.line);
        ExprPtr e = tuple(true);
        expect_op(")");
        return e;
      }
      if (t.text == "[" || t.text == "{") {
        const bool is_list = t.text == "[";
        auto e = make_expr(is_list ? ExprKind::List : ExprKind::Dict, t.line);
        const char* close = is_list ? "]" : "}";
        while (!accept_op(close)) {
          if (!e->args.empty()) {
            expect_op(",");
            if (accept_op(close)) break;
          }
          e->args.push_back(expression(true));
          if (!is_list) {
            expect_op(":");
            e->args.push_back(expression(true));
          }
        }
        return e;
      }
      break;
    default: break;
  }
  error(t.line, "unexpected " + describe(t));
}

ExprPtr ExprParser::postfix(ExprPtr e) {
  while (peek().type == Tok::Op) {
    if (peek().text == "." || peek().text == "[") {
      e = subscript(std::move(e));
    } else if (peek().text == "(") {
      auto c = make_expr(ExprKind::Call, next().line);
      c->args.push_back(std::move(e));
      call_args(*c);
      e = std::move(c);
    } else {
      break;
    }
  }
  return e;
}

ExprPtr ExprParser::filter_expr(ExprPtr e) {
  while (true) {
    if (peek().type == Tok::Op && peek().text == "|") {
      e = filter(std::move(e));
    } else if (peek().type == Tok::Name && peek().text == "is") {
      e = test(std::move(e));
    } else if (peek().type == Tok::Op && peek().text == "(") {
      auto c = make_expr(ExprKind::Call, next().line);
      c->args.push_back(std::move(e));
      call_args(*c);
      e = std::move(c);
    } else {
      return e;
    }
  }
}

ExprPtr ExprParser::subscript(ExprPtr e) {
  const Token op = next();
  if (op.text == ".") {
    const Token& t = peek();
    if (t.type == Tok::Name) {
      auto a = make_expr(ExprKind::Attr, t.line);
      a->name = next().text;
      a->args.push_back(std::move(e));
      return a;
    }
    if (t.type == Tok::Int) {  // foo.0 is foo[0]
      auto i = make_expr(ExprKind::Item, t.line);
      i->args.push_back(std::move(e));
      auto k = make_expr(ExprKind::Literal, t.line);
      k->literal = Value::integer(std::strtoll(next().text.c_str(), nullptr, 10));
      i->args.push_back(std::move(k));
      return i;
    }
    error(t.line, "expected an attribute name after '.'");
  }
  // [index] or [start:stop:step]
  std::vector<ExprPtr> parts(1);
  int colons = 0;
  while (!accept_op("]")) {
    if (accept_op(":")) {
      if (++colons > 2) error(op.line, "bad slice");
      parts.emplace_back();
    } else if (parts.back()) {
      error(peek().line, "expected ']'");
    } else {
      parts.back() = expression(true);
    }
  }
  if (colons == 0) {
    if (!parts[0]) error(op.line, "empty subscript");
    auto i = make_expr(ExprKind::Item, op.line);
    i->args.push_back(std::move(e));
    i->args.push_back(std::move(parts[0]));
    return i;
  }
  auto s = make_expr(ExprKind::Slice, op.line);
  s->args.push_back(std::move(e));
  parts.resize(3);
  for (auto& p : parts) s->args.push_back(std::move(p));
  return s;
}

void ExprParser::call_args(Expr& call) {
  while (!accept_op(")")) {
    if (call.args.size() > 1 || !call.kwargs.empty()) {
      expect_op(",");
      if (accept_op(")")) break;
    }
    if (peek().type == Tok::Op && (peek().text == "*" || peek().text == "**")) error(peek().line, "unsupported *args/**kwargs in a call");
    if (peek().type == Tok::Name && p_ + 1 < t_.size() && t_[p_ + 1].type == Tok::Op && t_[p_ + 1].text == "=") {
      std::string key = next().text;
      next();
      call.kwargs.emplace_back(std::move(key), expression(true));
    } else {
      if (!call.kwargs.empty()) error(peek().line, "positional argument after a keyword argument");
      call.args.push_back(expression(true));
    }
  }
}

ExprPtr ExprParser::filter(ExprPtr e) {
  next();  // |
  const Token& name = expect_type(Tok::Name, "a filter name");
  if (!is_known_filter(name.text)) error(name.line, "unsupported filter '" + name.text + "'");
  auto f = make_expr(ExprKind::Filter, name.line);
  f->name = name.text;
  f->args.push_back(std::move(e));
  if (accept_op("(")) call_args(*f);
  return f;
}

ExprPtr ExprParser::filter_chain(ExprPtr subject) {
  if (!subject && !(peek().type == Tok::Op && peek().text == "|")) {
    // {% filter name %}: the first filter has no leading '|'
    const Token& name = expect_type(Tok::Name, "a filter name");
    if (!is_known_filter(name.text)) error(name.line, "unsupported filter '" + name.text + "'");
    auto f = make_expr(ExprKind::Filter, name.line);
    f->name = name.text;
    f->args.push_back(nullptr);
    if (accept_op("(")) call_args(*f);
    subject = std::move(f);
  }
  while (peek().type == Tok::Op && peek().text == "|") subject = filter(std::move(subject));
  return subject;
}

ExprPtr ExprParser::test(ExprPtr e) {
  next();  // is
  auto t = make_expr(ExprKind::Test, peek().line);
  t->negated = accept_name("not");
  const Token& name = expect_type(Tok::Name, "a test name");
  if (!is_known_test(name.text)) error(name.line, "unsupported test '" + name.text + "'");
  t->name = name.text;
  t->args.push_back(std::move(e));
  const Token& a = peek();
  if (a.type == Tok::Op && a.text == "(") {
    next();
    call_args(*t);
  } else if ((a.type == Tok::Name && a.text != "else" && a.text != "or" && a.text != "and") || a.type == Tok::String ||
             a.type == Tok::Int || a.type == Tok::Float || (a.type == Tok::Op && (a.text == "[" || a.text == "{"))) {
    t->args.push_back(postfix(primary()));  // `is divisibleby 3`, `is sameas false`
  }
  return t;
}

}  // namespace specd::chat::jinja

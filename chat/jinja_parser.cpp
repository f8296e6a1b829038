// The statement half of the parser: tags, bodies and their end tags (expressions: jinja_parse_expr.cpp).
#include "chat/jinja_parser.h"

#include <specd/error.h>

#include "chat/jinja_expr_parser.h"
#include "chat/jinja_lexer.h"

namespace specd::chat::jinja {

namespace {

class StmtParser : public ExprParser {
 public:
  using ExprParser::ExprParser;

  std::vector<StmtPtr> body(std::initializer_list<std::string_view> ends, std::string* which) {
    std::vector<StmtPtr> out;
    while (true) {
      const Token& t = peek();
      if (t.type == Tok::End) {
        if (ends.size() == 0) return out;
        std::string m = "unterminated '";
        m.append(open_.back().first).append("' block opened on line ").append(std::to_string(open_.back().second));
        m.append(" (expected '").append(*ends.begin()).append("' before the end of the template)");
        error(open_.back().second, m);
      }
      if (t.type == Tok::Text) {
        out.push_back(stmt(StmtKind::Text, t.line));
        out.back()->text = next().text;
      } else if (t.type == Tok::VarBegin) {
        next();
        out.push_back(stmt(StmtKind::Output, t.line));
        out.back()->expr = tuple(true);
        expect_type(Tok::VarEnd, "'}}'");
      } else {
        next();  // {%
        const Token& name = peek();
        if (name.type != Tok::Name) error(name.line, "expected a tag name after '{%'");
        for (std::string_view e : ends)
          if (name.text == e) {
            *which = next().text;
            return out;
          }
        out.push_back(statement());
      }
    }
  }

 private:
  static StmtPtr stmt(StmtKind k, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->line = line;
    return s;
  }

  void block_end() { expect_type(Tok::BlockEnd, "'%}'"); }

  // The blocks open around the parser's position (tag name, line), for "unterminated" errors.
  struct Nest {
    Nest(StmtParser* p, const Token& tag) : p_(p) {
      if (static_cast<int>(p_->open_.size()) >= kMaxNesting) fail(SPECD_E_LIMIT, "chat template: blocks nest too deep");
      p_->open_.emplace_back(tag.text, tag.line);
    }
    ~Nest() { p_->open_.pop_back(); }
    StmtParser* p_;
  };

  StmtPtr statement() {
    const Token tag = next();
    Nest nest(this, tag);
    if (tag.text == "if") return if_stmt(tag.line);
    if (tag.text == "for") return for_stmt(tag.line);
    if (tag.text == "set") return set_stmt(tag.line);
    if (tag.text == "macro") return macro_stmt(tag.line);
    if (tag.text == "break" || tag.text == "continue") {
      if (loops_ == 0) error(tag.line, "'" + tag.text + "' outside a for loop");
      block_end();
      return stmt(tag.text == "break" ? StmtKind::Break : StmtKind::Continue, tag.line);
    }
    if (tag.text == "filter") {
      auto s = stmt(StmtKind::FilterBlock, tag.line);
      s->expr = filter_chain(nullptr);
      block_end();
      s->body = closed_body("endfilter");
      return s;
    }
    if (tag.text == "generation") {
      auto s = stmt(StmtKind::Generation, tag.line);
      block_end();
      s->body = closed_body("endgeneration");
      return s;
    }
    error(tag.line, "unsupported tag '" + tag.text + "'");
  }

  std::vector<StmtPtr> closed_body(std::string_view end) {
    std::string which;
    auto b = body({end}, &which);
    block_end();
    return b;
  }

  StmtPtr if_stmt(int line) {
    auto s = stmt(StmtKind::If, line);
    s->expr = tuple(true);
    block_end();
    std::string which;
    s->body = body({"elif", "else", "endif"}, &which);
    if (which == "elif") {
      s->else_body.push_back(if_stmt(line_of_prev()));
    } else if (which == "else") {
      block_end();
      s->else_body = body({"endif"}, &which);
      block_end();
    } else {
      block_end();
    }
    return s;
  }

  StmtPtr for_stmt(int line) {
    auto s = stmt(StmtKind::For, line);
    s->targets = target_names();
    expect_name("in");
    s->expr = tuple(false);
    if (accept_name("if")) s->cond = expression(true);
    if (peek().type == Tok::Name && peek().text == "recursive") error(peek().line, "unsupported recursive for loop");
    block_end();
    std::string which;
    ++loops_;
    s->body = body({"else", "endfor"}, &which);
    --loops_;
    block_end();
    if (which == "else") {
      s->else_body = body({"endfor"}, &which);
      block_end();
    }
    return s;
  }

  std::vector<std::string> target_names() {
    std::vector<std::string> names{expect_type(Tok::Name, "a variable name").text};
    while (accept_op(",")) names.push_back(expect_type(Tok::Name, "a variable name").text);
    return names;
  }

  StmtPtr set_stmt(int line) {
    auto s = stmt(StmtKind::Set, line);
    const std::string first = expect_type(Tok::Name, "a variable name").text;
    if (accept_op(".")) {
      s->attr_set = true;
      s->targets = {first, expect_type(Tok::Name, "an attribute name").text};
    } else {
      s->targets = {first};
      while (accept_op(",")) s->targets.push_back(expect_type(Tok::Name, "a variable name").text);
    }
    if (accept_op("=")) {
      s->expr = tuple(true);
      block_end();
      return s;
    }
    if (s->attr_set || s->targets.size() != 1) error(line, "a block set takes one variable name");
    s->kind = StmtKind::SetBlock;
    if (peek().type == Tok::Op && peek().text == "|") s->expr = filter_chain(nullptr);
    block_end();
    s->body = closed_body("endset");
    return s;
  }

  StmtPtr macro_stmt(int line) {
    auto s = stmt(StmtKind::Macro, line);
    s->text = expect_type(Tok::Name, "a macro name").text;
    expect_op("(");
    while (!accept_op(")")) {
      if (!s->targets.empty()) expect_op(",");
      if (accept_op(")")) break;
      s->targets.push_back(expect_type(Tok::Name, "a parameter name").text);
      s->defaults.push_back(accept_op("=") ? expression(true) : nullptr);
    }
    block_end();
    const int saved = loops_;
    loops_ = 0;  // break/continue cannot reach a loop around the macro
    s->body = closed_body("endmacro");
    loops_ = saved;
    return s;
  }

  std::vector<std::pair<std::string, int>> open_;
  int loops_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source) {
  StmtParser p(tokenize(source));
  auto prog = std::make_shared<Program>();
  std::string which;
  prog->body = p.body({}, &which);
  return prog;
}

}  // namespace specd::chat::jinja

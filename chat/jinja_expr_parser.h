// The expression half of the parser (jinja2's precedence: conditional, or, and, not, comparisons,
// + -, ~, * / // %, **, unary, then postfix . [] () and | filters / is tests), and the token cursor
// the statement parser (jinja_parser.cpp) builds on.
#pragma once

#include <string>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace specd::chat::jinja {

class ExprParser {
 public:
  explicit ExprParser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

 protected:
  // All of these throw Failure (SPECD_E_UNSUPPORTED with the line) on a syntax error.
  ExprPtr tuple(bool with_condexpr);       // expr or expr, expr, ... (a Tuple)
  ExprPtr expression(bool with_condexpr);  // one expression; without condexpr `a if b` is not consumed
  // `| f(args) | g ...` applied to subject (null for {% filter %} and {% set x | f %}).
  ExprPtr filter_chain(ExprPtr subject);

  const Token& peek() const { return t_[p_]; }
  const Token& next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }
  int line_of_prev() const { return t_[p_ > 0 ? p_ - 1 : 0].line; }
  const Token& expect_type(Tok type, const char* what);
  void expect_op(const char* op);
  void expect_name(const char* name);
  bool accept_op(const char* op);
  bool accept_name(const char* name);
  [[noreturn]] void error(int line, const std::string& what) const;
  static std::string describe(const Token& t);  // a token as an error message names it

 private:
  ExprPtr condexpr();
  ExprPtr or_expr();
  ExprPtr and_expr();
  ExprPtr not_expr();
  ExprPtr compare();
  ExprPtr math1();
  ExprPtr concat();
  ExprPtr math2();
  ExprPtr pow();
  ExprPtr unary(bool with_filter);
  ExprPtr primary();
  ExprPtr postfix(ExprPtr e);
  ExprPtr filter_expr(ExprPtr e);
  ExprPtr subscript(ExprPtr e);
  ExprPtr filter(ExprPtr e);
  ExprPtr test(ExprPtr e);
  void call_args(Expr& call);
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line);

  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
};

ExprPtr make_expr(ExprKind kind, int line);

}  // namespace specd::chat::jinja

// The parsed template: expression and statement nodes. A node owns its children; the whole tree
// is immutable after parsing and shared by every copy of a ChatTemplate.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace specd::chat::jinja {

enum class ExprKind {
  Literal,  // literal
  Name,     // name
  List,     // args = items
  Tuple,    // args = items (a list to the evaluator; Python prints tuples rarely in templates)
  Dict,     // args = key0, value0, key1, value1, ...
  Attr,     // args[0].name
  Item,     // args[0][args[1]]
  Slice,    // args[0][args[1]:args[2]:args[3]], each bound may be null
  Call,     // args[0](args[1..], kwargs)
  Filter,   // args[0] | name(args[1..], kwargs)
  Test,     // args[0] is [not] name(args[1..]); negated
  Unary,    // name in {"not", "-", "+"}, args[0]
  Binary,   // args[0] name args[1]; name in {"or", "and", "+", "-", "*", "/", "//", "%", "**", "~"}
  Compare,  // args[0] ops[0] args[1] ops[1] args[2] ...: a Python comparison chain
  Cond,     // args[0] if args[1] else args[2] (args[2] null: Undefined)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line;
  std::string name;
  Value literal;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

enum class StmtKind {
  Text,        // text
  Output,      // {{ expr }}
  If,          // if expr: body else else_body (an elif is an If alone in else_body)
  For,         // for targets in expr [if cond]: body else else_body
  Set,         // set targets = expr (targets of a tuple unpack), or names = {ns, attr} with attr_set
  SetBlock,    // set targets[0] %} body {% endset, with an optional filter chain in expr (subject null)
  Macro,       // macro text(targets with defaults): body
  Break,
  Continue,
  FilterBlock, // filter expr (a Filter chain whose innermost subject is null) %} body
  Generation,  // HF's {% generation %}: renders its body unchanged
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind;
  int line;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::string> targets;
  std::vector<ExprPtr> defaults;  // Macro: one per target, null where the parameter has none
  bool attr_set = false;          // Set: targets = {namespace, attribute}
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> else_body;
};

struct Program {
  std::vector<StmtPtr> body;
};

}  // namespace specd::chat::jinja

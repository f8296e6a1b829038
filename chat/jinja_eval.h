// Renders a parsed Program: jinja2's scoping (a for loop's body and a macro call get a fresh scope;
// if blocks do not), loop variables, macros, break/continue and captured output.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_ast.h"

namespace specd::chat::jinja {

// One scope: names bound here, then the enclosing scope's.
struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;
  Value* find(const std::string& name);
  void set(const std::string& name, Value v);
};
using FramePtr = std::shared_ptr<Frame>;

// Caps on a hostile template's work: statements run plus loop iterations, and macro calls nested.
inline constexpr long kMaxSteps = 5'000'000;
inline constexpr int kMaxCallDepth = 100;
// Statements and expressions being evaluated at once (nested blocks, expressions and macro calls
// together): bounds the C++ stack whatever the mix.
inline constexpr int kMaxEvalDepth = 1000;

class Evaluator {
 public:
  // globals: the root scope (the render context and the builtin functions); borrowed for render().
  explicit Evaluator(FramePtr globals) : globals_(std::move(globals)) {}
  // Throws Failure; the line of the failing statement is filled in where the error had none.
  std::string render(const Program& program);

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const std::vector<StmtPtr>& body, const FramePtr& frame);
  Flow exec_stmt(const Stmt& s, const FramePtr& frame);
  Flow exec_for(const Stmt& s, const FramePtr& frame);
  void exec_set(const Stmt& s, const FramePtr& frame);
  // Runs body with its output collected and returned; flow (may be null) gets a break/continue.
  std::string capture(const std::vector<StmtPtr>& body, const FramePtr& frame, Flow* flow = nullptr);
  Value make_macro(const Stmt& s, const FramePtr& frame);
  Value call_macro(const Stmt& s, const FramePtr& defined_in, Args& args);

  Value eval(const Expr& e, const FramePtr& frame);
  Value eval_node(const Expr& e, const FramePtr& frame);
  struct DepthGuard {
    explicit DepthGuard(Evaluator& ev);
    ~DepthGuard() { --ev_.depth_; }
    Evaluator& ev_;
  };
  Value eval_call(const Expr& e, const FramePtr& frame);
  Value eval_filter(const Expr& e, const FramePtr& frame, const Value* block_subject);
  Value eval_binary(const Expr& e, const FramePtr& frame);
  bool eval_compare(const Expr& e, const FramePtr& frame);
  Args eval_args(const Expr& e, const FramePtr& frame);

  FramePtr globals_;
  std::string out_;
  long steps_ = 0;
  int call_depth_ = 0;
  int depth_ = 0;
};

// Binary operators on values with Python's semantics (jinja_ops.cpp).
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value slice(const Value& v, const Value& start, const Value& stop, const Value& step);
bool contains(const Value& container, const Value& item);
// markupsafe's escape(): & < > " ' as entities.
std::string html_escape(const std::string& s);

}  // namespace specd::chat::jinja

// Expressions: names, literals, attribute/item/slice access, calls, filters, tests, operators.
#include <specd/error.h>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"

namespace specd::chat::jinja {

namespace {

void check_value_size(const Value& v) {
  if (v.is_string()) check_size(v.s);
  if (v.is_list() && v.list->size() > kMaxStringBytes) fail(SPECD_E_LIMIT, "chat template: a list grew too long");
}

}  // namespace

Args Evaluator::eval_args(const Expr& e, const FramePtr& frame) {
  Args a;
  for (size_t k = 1; k < e.args.size(); ++k) a.pos.push_back(eval(*e.args[k], frame));
  for (const auto& [name, x] : e.kwargs) a.kw.emplace_back(name, eval(*x, frame));
  return a;
}

Evaluator::DepthGuard::DepthGuard(Evaluator& ev) : ev_(ev) {
  if (++ev_.depth_ > kMaxEvalDepth) {
    --ev_.depth_;
    fail(SPECD_E_LIMIT, "chat template: evaluation nests deeper than 1000");
  }
}

Value Evaluator::eval(const Expr& e, const FramePtr& frame) {
  DepthGuard guard(*this);
  return eval_node(e, frame);
}

Value Evaluator::eval_node(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case ExprKind::Literal: return e.literal;
    case ExprKind::Name: {
      const Value* v = frame->find(e.name);
      return v ? *v : Value::undefined(e.name);
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      List items;
      for (const ExprPtr& x : e.args) items.push_back(eval(*x, frame));
      return Value::make_list(std::move(items), e.kind == ExprKind::Tuple ? Seq::Tuple : Seq::List);
    }
    case ExprKind::Dict: {
      Value d = Value::make_dict();
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        Value key = eval(*e.args[k], frame);
        // All str keys, or all int keys (Dict::int_keys); bool, float and mixed keys are refused.
        const bool is_int = key.kind == Value::Kind::Int;
        if ((!key.is_string() && !is_int) || (k > 0 && is_int != d.dict->int_keys))
          fail(SPECD_E_UNSUPPORTED, "unsupported dict key of type '" + std::string(type_name(key)) + "'");
        d.dict->int_keys = is_int;
        d.dict->set(is_int ? std::to_string(key.i) : key.s, eval(*e.args[k + 1], frame));
      }
      return d;
    }
    case ExprKind::Attr: return get_attr(eval(*e.args[0], frame), e.name);
    case ExprKind::Item: return get_item(eval(*e.args[0], frame), eval(*e.args[1], frame));
    case ExprKind::Slice: {
      const Value v = eval(*e.args[0], frame);
      Value b[3];
      for (int k = 0; k < 3; ++k) b[k] = e.args[k + 1] ? eval(*e.args[k + 1], frame) : Value::none();
      return slice(v, b[0], b[1], b[2]);
    }
    case ExprKind::Call: return eval_call(e, frame);
    case ExprKind::Filter: return eval_filter(e, frame, nullptr);
    case ExprKind::Test: {
      const Value v = eval(*e.args[0], frame);
      Args a = eval_args(e, frame);
      return Value::boolean(apply_test(e.name, v, a) != e.negated);
    }
    case ExprKind::Unary: {
      const Value v = eval(*e.args[0], frame);
      if (e.name == "not") return Value::boolean(!truthy(v));
      if (!v.is_number()) fail_type("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
      if (e.name == "+") return v.kind == Value::Kind::Bool ? Value::integer(v.b) : v;
      if (v.kind == Value::Kind::Float) return Value::real(-v.f);
      return binary_op("-", Value::integer(0), v);
    }
    case ExprKind::Binary: {
      Value r = eval_binary(e, frame);
      check_value_size(r);
      return r;
    }
    case ExprKind::Compare: return Value::boolean(eval_compare(e, frame));
    case ExprKind::Cond:
      if (truthy(eval(*e.args[1], frame))) return eval(*e.args[0], frame);
      return e.args[2] ? eval(*e.args[2], frame) : Value::undefined();
  }
  return Value::undefined();
}

Value Evaluator::eval_call(const Expr& e, const FramePtr& frame) {
  const Value callee = eval(*e.args[0], frame);
  if (callee.kind != Value::Kind::Callable) {
    if (callee.is_undefined()) fail_type("'" + (callee.s.empty() ? std::string("undefined") : callee.s) + "' is undefined");
    fail_type("'" + std::string(type_name(callee)) + "' object is not callable");
  }
  Args a = eval_args(e, frame);
  Value r = callee.fn->call(a);
  check_value_size(r);
  return r;
}

// A filter chain; block_subject replaces the innermost null subject of {% filter %} / {% set x | f %}.
Value Evaluator::eval_filter(const Expr& e, const FramePtr& frame, const Value* block_subject) {
  Value subject;
  if (!e.args[0]) subject = *block_subject;
  else if (e.args[0]->kind == ExprKind::Filter) subject = eval_filter(*e.args[0], frame, block_subject);
  else subject = eval(*e.args[0], frame);
  Args a = eval_args(e, frame);
  Value r = apply_filter(e.name, subject, a);
  check_value_size(r);
  return r;
}

Value Evaluator::eval_binary(const Expr& e, const FramePtr& frame) {
  Value a = eval(*e.args[0], frame);
  if (e.name == "and") return truthy(a) ? eval(*e.args[1], frame) : a;
  if (e.name == "or") return truthy(a) ? a : eval(*e.args[1], frame);
  const Value b = eval(*e.args[1], frame);
  if (e.name == "~") return Value::str(to_str(a) + to_str(b));
  return binary_op(e.name, a, b);
}

bool Evaluator::eval_compare(const Expr& e, const FramePtr& frame) {
  Value left = eval(*e.args[0], frame);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.args[k + 1], frame);
    const std::string& op = e.ops[k];
    bool ok;
    if (op == "==") ok = equals(left, right);
    else if (op == "!=") ok = !equals(left, right);
    else if (op == "<") ok = less(left, right);
    else if (op == ">") ok = less(right, left);
    else if (op == "<=") ok = less(left, right) || equals(left, right);
    else if (op == ">=") ok = less(right, left) || equals(left, right);
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return false;
    left = std::move(right);
  }
  return true;
}

}  // namespace specd::chat::jinja

// Statements: output, if, for (with loop.*, else, the inline filter, break/continue), set, block
// set, macros, {% filter %} and {% generation %}.
#include "chat/jinja_eval.h"

#include <specd/error.h>

#include "chat/jinja_builtins.h"

namespace specd::chat::jinja {

Value* Frame::find(const std::string& name) {
  for (Frame* f = this; f; f = f->parent.get())
    for (auto& [k, v] : f->vars)
      if (k == name) return &v;
  return nullptr;
}

void Frame::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

std::string Evaluator::render(const Program& program) {
  auto top = std::make_shared<Frame>();
  top->parent = globals_;
  exec(program.body, top);
  return std::move(out_);
}

Evaluator::Flow Evaluator::exec(const std::vector<StmtPtr>& body, const FramePtr& frame) {
  for (const StmtPtr& s : body) {
    const Flow f = exec_stmt(*s, frame);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

namespace {

FramePtr child(const FramePtr& parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

// Give an error without a line the line of the statement it happened in.
[[noreturn]] void rethrow_with_line(const Failure& f, int line) {
  if (f.line != 0) throw f;
  std::string m = "chat template line ";
  m.append(std::to_string(line)).append(": ").append(f.what());
  throw Failure(f.code, line, m);
}

void bind_targets(Frame& frame, const std::vector<std::string>& targets, const Value& v) {
  if (targets.size() == 1) {
    frame.set(targets[0], v);
    return;
  }
  const List items = iterate(v);
  if (items.size() != targets.size()) {
    std::string m = "cannot unpack ";
    m.append(std::to_string(items.size())).append(" values into ").append(std::to_string(targets.size())).append(" names");
    fail_type(m);
  }
  for (size_t k = 0; k < items.size(); ++k) frame.set(targets[k], items[k]);
}

}  // namespace

Evaluator::Flow Evaluator::exec_stmt(const Stmt& s, const FramePtr& frame) {
  DepthGuard guard(*this);
  if (++steps_ > kMaxSteps) fail(SPECD_E_LIMIT, "chat template: more than 5000000 steps");
  try {
    switch (s.kind) {
      case StmtKind::Text: out_ += s.text; break;
      case StmtKind::Output: out_ += to_str(eval(*s.expr, frame)); break;
      case StmtKind::If: return exec(truthy(eval(*s.expr, frame)) ? s.body : s.else_body, frame);
      case StmtKind::For: return exec_for(s, frame);
      case StmtKind::Set: exec_set(s, frame); break;
      case StmtKind::SetBlock: {  // like {% filter %}, the body gets its own scope in jinja2
        // A break/continue inside leaves the loop around it at once: nothing is assigned or written.
        Flow flow = Flow::Normal;
        Value v = Value::str(capture(s.body, child(frame), &flow));
        if (flow != Flow::Normal) return flow;
        if (s.expr) v = eval_filter(*s.expr, frame, &v);
        frame->set(s.targets[0], std::move(v));
        break;
      }
      case StmtKind::Macro: frame->set(s.text, make_macro(s, frame)); break;
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
      case StmtKind::FilterBlock: {
        Flow flow = Flow::Normal;
        const Value body = Value::str(capture(s.body, child(frame), &flow));
        if (flow != Flow::Normal) return flow;
        out_ += to_str(eval_filter(*s.expr, frame, &body));
        break;
      }
      case StmtKind::Generation: return exec(s.body, frame);
    }
  } catch (const Failure& f) {
    rethrow_with_line(f, s.line);
  }
  check_size(out_);
  return Flow::Normal;
}

std::string Evaluator::capture(const std::vector<StmtPtr>& body, const FramePtr& frame, Flow* flow) {
  std::string saved = std::move(out_);
  out_.clear();
  const Flow f = exec(body, frame);
  if (flow) *flow = f;
  std::string got = std::move(out_);
  out_ = std::move(saved);
  return got;
}

void Evaluator::exec_set(const Stmt& s, const FramePtr& frame) {
  Value v = eval(*s.expr, frame);
  if (!s.attr_set) {
    bind_targets(*frame, s.targets, v);
    return;
  }
  Value* ns = frame->find(s.targets[0]);
  if (!ns || !ns->is_dict() || !ns->dict->is_namespace)
    fail_type("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
  if (holds(v, ns->dict.get())) fail(SPECD_E_UNSUPPORTED, "unsupported: a namespace stored inside itself");
  ns->dict->set(s.targets[1], std::move(v));
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s, const FramePtr& frame) {
  const Value seq = eval(*s.expr, frame);
  List items = iterate(seq);
  if (s.cond) {  // {% for x in xs if cond %}: filtered before the loop, so loop.length counts the kept ones
    List kept;
    for (Value& item : items) {
      auto f = std::make_shared<Frame>();
      f->parent = frame;
      bind_targets(*f, s.targets, item);
      if (truthy(eval(*s.cond, f))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  // jinja2 clears its "no iteration" flag at the end of the body, so the else block also runs when
  // every iteration left through break or continue (its code generator's iteration_indicator).
  bool completed = false;
  for (int64_t k = 0; k < n; ++k) {
    if (++steps_ > kMaxSteps) fail(SPECD_E_LIMIT, "chat template: more than 5000000 steps");
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    bind_targets(*f, s.targets, items[static_cast<size_t>(k)]);
    Value loop = Value::make_dict();
    Dict& d = *loop.dict;
    d.opaque = true;
    d.set("index", Value::integer(k + 1));
    d.set("index0", Value::integer(k));
    d.set("revindex", Value::integer(n - k));
    d.set("revindex0", Value::integer(n - k - 1));
    d.set("first", Value::boolean(k == 0));
    d.set("last", Value::boolean(k == n - 1));
    d.set("length", Value::integer(n));
    d.set("depth", Value::integer(1));
    d.set("depth0", Value::integer(0));
    d.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value::undefined("previtem"));
    d.set("nextitem", k + 1 < n ? items[static_cast<size_t>(k + 1)] : Value::undefined("nextitem"));
    d.set("cycle", Value::callable("loop.cycle", [k](Args& a) {
            if (a.pos.empty()) fail_type("no items for cycling given");
            return a.pos[static_cast<size_t>(k) % a.pos.size()];
          }));
    f->set("loop", std::move(loop));
    const Flow flow = exec(s.body, f);
    if (flow == Flow::Break) break;
    completed = completed || flow == Flow::Normal;
  }
  return completed ? Flow::Normal : exec(s.else_body, frame);
}

Value Evaluator::make_macro(const Stmt& s, const FramePtr& frame) {
  const Stmt* stmt = &s;
  // Weak: the macro lives in the frame it captures, and a strong pointer would be a reference cycle.
  std::weak_ptr<Frame> defined_in = frame;
  return Value::callable(s.text, [this, stmt, defined_in](Args& args) {
    FramePtr f = defined_in.lock();
    if (!f) fail(SPECD_E_UNSUPPORTED, "unsupported: macro '" + stmt->text + "' called after its scope ended");
    return call_macro(*stmt, f, args);
  });
}

Value Evaluator::call_macro(const Stmt& s, const FramePtr& defined_in, Args& args) {
  if (call_depth_ >= kMaxCallDepth) fail(SPECD_E_LIMIT, "chat template: macro calls nest deeper than 100");
  struct Depth {
    explicit Depth(int& d) : d_(d) { ++d_; }
    ~Depth() { --d_; }
    int& d_;
  } depth(call_depth_);
  auto f = std::make_shared<Frame>();
  f->parent = defined_in;
  const size_t np = s.targets.size();
  List varargs;
  for (size_t k = 0; k < args.pos.size(); ++k) {
    if (k < np) f->set(s.targets[k], args.pos[k]);
    else varargs.push_back(args.pos[k]);
  }
  Value kwargs = Value::make_dict();
  for (auto& [key, v] : args.kw) {
    bool is_param = false;
    for (size_t k = 0; k < np; ++k) is_param = is_param || s.targets[k] == key;
    if (is_param) f->set(key, v);
    else kwargs.dict->set(key, v);
  }
  for (size_t k = 0; k < np; ++k) {
    bool bound = false;
    for (const auto& [name, v] : f->vars) bound = bound || name == s.targets[k];
    if (bound) continue;
    f->set(s.targets[k], s.defaults[k] ? eval(*s.defaults[k], f) : Value::undefined(s.targets[k]));
  }
  f->set("varargs", Value::make_list(std::move(varargs), Seq::Tuple));  // a tuple, as in Python
  f->set("kwargs", std::move(kwargs));
  return Value::str(capture(s.body, f));
}

}  // namespace specd::chat::jinja

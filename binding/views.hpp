// Reading typed arrays and sizes from the binding's arguments. These checks keep native code inside the
// memory JavaScript handed over (src/ has already validated everything for the user; a failure here
// means the package's own TypeScript called the binding wrongly, so the messages say "internal").
#pragma once

#include <napi.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace softmax_simd {

using Keepalive = std::vector<Napi::ObjectReference>;

template <typename T>
struct View {
  const T* data;
  size_t length;
};

template <typename T>
constexpr napi_typedarray_type typed_kind();
template <>
constexpr napi_typedarray_type typed_kind<float>() { return napi_float32_array; }
template <>
constexpr napi_typedarray_type typed_kind<double>() { return napi_float64_array; }
template <>
constexpr napi_typedarray_type typed_kind<int32_t>() { return napi_int32_array; }

inline size_t checked_mul(size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) return std::numeric_limits<size_t>::max();
  return a * b;
}

// Reading one argument value: one Node-API call each on the path of a valid call (a small call's
// fixed cost is mostly these calls; a failed conversion is what detects a wrong type).
inline size_t size_value(napi_env env, napi_value v, const char* name) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok)
    throw Napi::TypeError::New(env, std::string("internal: ") + name + " must be a number");
  if (!(d >= 1 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(env, std::string("internal: ") + name + " must be a positive integer");
  return static_cast<size_t>(d);
}

inline size_t threads_value(napi_env env, napi_value v) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 1)) return 1;
  return d > 256 ? 256 : static_cast<size_t>(d);
}

inline bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

inline napi_typedarray_type float_kind(napi_env env, napi_value v, const char* name) {
  napi_typedarray_type type;
  size_t length;
  if (napi_get_typedarray_info(env, v, &type, &length, nullptr, nullptr, nullptr) != napi_ok)
    throw Napi::TypeError::New(env, std::string("internal: ") + name + " must be a typed array");
  return type;
}

// The typed array v: of T's element type, holding at least `min_length` elements. Its data pointer
// already includes the view's byteOffset. With `keep`, the array stays referenced (alive) until the
// Keepalive is destroyed on the main thread.
template <typename T>
View<T> view(napi_env env, napi_value v, const char* name, size_t min_length, Keepalive* keep) {
  napi_typedarray_type type;
  size_t length;
  void* data = nullptr;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok)
    throw Napi::TypeError::New(env, std::string("internal: ") + name + " must be a typed array");
  if (type != typed_kind<T>())
    throw Napi::TypeError::New(env, std::string("internal: ") + name + " has the wrong element type");
  if (length < min_length || (min_length > 0 && data == nullptr))
    throw Napi::RangeError::New(env, std::string("internal: ") + name + " is shorter than its shape");
  if (keep) keep->emplace_back(Napi::Persistent(Napi::Object(env, v)));
  return {static_cast<const T*>(data), length};
}

// As view, but null or undefined give nullptr.
template <typename T>
const T* optional_view(napi_env env, napi_value v, const char* name, size_t min_length, Keepalive* keep) {
  if (is_nullish(env, v)) return nullptr;
  return view<T>(env, v, name, min_length, keep).data;
}

// The same, read from a property of an argument object (one property read each).
inline size_t get_size(const Napi::Object& o, const char* key) { return size_value(o.Env(), o.Get(key), key); }

inline size_t get_threads(const Napi::Object& o) { return threads_value(o.Env(), o.Get("threads")); }

inline napi_typedarray_type float_kind(const Napi::Object& o, const char* key) {
  return float_kind(o.Env(), o.Get(key), key);
}

template <typename T>
View<T> view(const Napi::Object& o, const char* key, size_t min_length, Keepalive* keep) {
  return view<T>(o.Env(), o.Get(key), key, min_length, keep);
}

template <typename T>
const T* optional_view(const Napi::Object& o, const char* key, size_t min_length, Keepalive* keep) {
  return optional_view<T>(o.Env(), o.Get(key), key, min_length, keep);
}

}  // namespace softmax_simd

// Reading typed arrays and sizes from the argument object. These checks keep native code inside the
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

inline size_t get_size(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("internal: ") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string("internal: ") + key + " must be a positive integer");
  return static_cast<size_t>(d);
}

inline size_t get_threads(const Napi::Object& o) {
  Napi::Value v = o.Get("threads");
  if (!v.IsNumber()) return 1;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1)) return 1;
  return d > 256 ? 256 : static_cast<size_t>(d);
}

inline napi_typedarray_type float_kind(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray()) throw Napi::TypeError::New(o.Env(), std::string("internal: ") + key + " must be a typed array");
  return v.As<Napi::TypedArray>().TypedArrayType();
}

// The typed array at o[key]: of T's element type, holding at least `min_length` elements. Its data
// pointer already includes the view's byteOffset. With `keep`, the array stays referenced (alive)
// until the Keepalive is destroyed on the main thread.
template <typename T>
View<T> view(const Napi::Object& o, const char* key, size_t min_length, Keepalive* keep) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string("internal: ") + key + " must be a typed array");
  napi_typedarray_type type;
  size_t length;
  void* data = nullptr;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok)
    throw Napi::TypeError::New(env, std::string("internal: cannot read ") + key);
  if (type != typed_kind<T>())
    throw Napi::TypeError::New(env, std::string("internal: ") + key + " has the wrong element type");
  if (length < min_length || (min_length > 0 && data == nullptr))
    throw Napi::RangeError::New(env, std::string("internal: ") + key + " is shorter than its shape");
  if (keep) keep->emplace_back(Napi::Persistent(v.As<Napi::Object>()));
  return {static_cast<const T*>(data), length};
}

template <typename T>
const T* optional_view(const Napi::Object& o, const char* key, size_t min_length, Keepalive* keep) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return view<T>(o, key, min_length, keep).data;
}

}  // namespace softmax_simd

#pragma once

#include <boost/json/object.hpp>

#include <concepts>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice {

/// What a field of a row holds.
enum class field_kind {
  missing, ///< the row has no such field
  null,
  boolean,
  integer, ///< a whole number (64-bit)
  number,  ///< a floating-point number
  string,  ///< text; also bytes and timestamps as their text
  list,
  record, ///< nested fields (an object, a map, a nested message)
};

/// A field read as a type it does not have, or missing where it is needed.
/// Thrown from a map or filter, it sends the record to the DLQ with this text.
class field_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A record's fields, decoded from its value by the pipeline's format.
///
/// Fields read the same whatever the payload's format: every decoder fills
/// the same tree (records and maps as nested records, lists as lists, bytes
/// as text). With a `parse.schema` a row holds the schema's fields in its
/// order, each checked against its declared type (a `double` field may hold
/// an integer, which reads as a double too); without one, whatever the value
/// holds.
///
/// The typed accessors cover flat fields; `tree()` reaches nested ones.
///
/// Memory: the rows of a batch share one arena (freed with the batch's last
/// row, counted by `runtime.maxInFlightBytes`). Change a batch's rows from one
/// thread at a time. To keep a row beyond its batch, copy it (a row's copy has
/// memory of its own); a boost::json value copied out of `tree()` keeps the
/// arena's storage, so copy such a value with `boost::json::storage_ptr()` or
/// it holds the whole batch's memory, and its credit, as long as it lives.
class row {
  template <class T>
  static constexpr bool is_character =
      std::is_same_v<T, char> || std::is_same_v<T, wchar_t> ||
      std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
      std::is_same_v<T, char32_t>;

public:
  /// The types `get`, `at` and `set` take: text as std::string or
  /// std::string_view (a view into the row, valid until it changes),
  /// std::int64_t, double (an integer reads as one too) and bool.
  template <class T>
  static constexpr bool field_type =
      std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view> ||
      std::is_same_v<T, std::int64_t> || std::is_same_v<T, double> ||
      std::is_same_v<T, bool>;

  row() = default;
  explicit row(boost::json::object fields) : fields_(std::move(fields)) {}
  /// A copy has memory of its own: a row kept beyond its batch does not
  /// keep the batch's parsed memory alive.
  row(const row& other) : fields_(other.fields_, boost::json::storage_ptr()) {}
  row& operator=(const row& other) {
    if (this != &other) *this = row(other);
    return *this;
  }
  /// A move takes the other's fields with their memory, whatever this row's
  /// was (boost::json's own assignment would copy them into this row's), and
  /// leaves the other empty on the default heap.
  row(row&& other) noexcept : fields_(std::move(other.fields_)) { other.clear_storage(); }
  row& operator=(row&& other) noexcept {
    if (this != &other) {
      fields_.~object();
      new (&fields_) boost::json::object(std::move(other.fields_));
      other.clear_storage();
    }
    return *this;
  }
  ~row() = default;

  bool empty() const noexcept { return fields_.empty(); }
  std::size_t size() const noexcept { return fields_.size(); }
  /// The names of the fields, in the row's order.
  std::vector<std::string_view> names() const;

  field_kind kind(std::string_view name) const noexcept;
  /// True when the field is there, even if null.
  bool contains(std::string_view name) const noexcept { return fields_.contains(name); }

  /// The field's value; nullopt when it is missing or null. Throws
  /// field_error when it holds another type (a whole-valued double such as
  /// 3.0 reads as an integer, though its kind() is `number`; a number never
  /// reads as text).
  template <class T>
  std::optional<T> get(std::string_view name) const {
    static_assert(field_type<T>, "row::get reads string, string_view, int64_t, "
                                 "double or bool");
    return read(name, static_cast<T*>(nullptr));
  }

  /// Like get, but a missing or null field throws field_error too.
  template <class T>
  T at(std::string_view name) const {
    if (auto v = get<T>(name)) return *v;
    throw field_error("field `" + std::string(name) + "` is " +
                      (contains(name) ? "null" : "missing"));
  }

  /// The field's value as text, for names and keys: text as it is, a number
  /// or boolean as written (1.0 stays "1.0"), a list or record as compact
  /// JSON; nullopt when missing or null (so `text(n) == "x"` is false then).
  std::optional<std::string> text(std::string_view name) const;

  /// Sets a field, adding it at the end when the row has none of that name.
  /// `value` may be a view into this row (copying one field to another).
  void set(std::string_view name, std::string_view value);
  void set(std::string_view name, const char* value) {
    set(name, std::string_view(value));
  }
  void set(std::string_view name, const std::string& value) {
    set(name, std::string_view(value));
  }
  /// Any integer type (signed char and unsigned char too). An unsigned value
  /// beyond int64_t is kept (its kind is `integer`), but get<std::int64_t>
  /// throws for it: it reads as a double.
  template <std::integral T>
  requires(!std::same_as<T, bool> && !is_character<T>) void set(std::string_view name,
                                                                T value) {
    if constexpr (std::is_signed_v<T>)
      set_integer(name, static_cast<std::int64_t>(value));
    else
      set_unsigned(name, static_cast<std::uint64_t>(value));
  }
  /// A NaN or an infinity is set as null: no payload format here can hold it.
  void set(std::string_view name, double value);
  /// As the double its shortest text gives: 0.1f is 0.1, not 0.10000000149011612.
  void set(std::string_view name, float value);
  void set(std::string_view name, bool value);
  void set(std::string_view name, std::nullptr_t);
  /// Not a character ('A' is not 65) nor a pointer (which would be a bool):
  /// give text as a string.
  template <class T>
  requires is_character<T>
  void set(std::string_view name, T value) = delete;
  template <class T>
  void set(std::string_view name, const T* value) = delete;
  /// Removes a field, keeping the others' order; false when there was none.
  bool erase(std::string_view name);

  /// The fields as a JSON-shaped tree, the model every format decodes into.
  const boost::json::object& tree() const noexcept { return fields_; }
  boost::json::object& tree() noexcept { return fields_; }

  friend bool operator==(const row& a, const row& b) { return a.fields_ == b.fields_; }

private:
  void clear_storage() noexcept {
    fields_.~object();
    new (&fields_) boost::json::object();
  }
  void set_integer(std::string_view name, std::int64_t value);
  void set_unsigned(std::string_view name, std::uint64_t value);
  std::optional<std::string> read(std::string_view name, std::string*) const;
  std::optional<std::string_view> read(std::string_view name, std::string_view*) const;
  std::optional<std::int64_t> read(std::string_view name, std::int64_t*) const;
  std::optional<double> read(std::string_view name, double*) const;
  std::optional<bool> read(std::string_view name, bool*) const;

  boost::json::object fields_;
};

/// Appends a row as compact JSON on one line: doubles in their shortest
/// round-trip form (67.27, 5.0), as Spark writes them.
void append_json(const row& fields, std::string& out);

} // namespace sluice

#include "tests/support/raw_produce.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::testing {

namespace {

/// Big-endian writer of Kafka's protocol primitives.
struct writer {
  std::string out;
  template <class T>
  void be(T v) {
    for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i)
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
  }
  void varint(std::int64_t v) { // zig-zag
    auto u = (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
    while (u >= 0x80) {
      out.push_back(static_cast<char>((u & 0x7f) | 0x80));
      u >>= 7;
    }
    out.push_back(static_cast<char>(u));
  }
  void str(const std::string& s) {
    be<std::int16_t>(static_cast<std::int16_t>(s.size()));
    out += s;
  }
};

std::string record_batch(const std::vector<std::string>& values) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  writer body;              // from attributes to the end: what the CRC covers
  body.be<std::int16_t>(0); // attributes
  body.be<std::int32_t>(static_cast<std::int32_t>(values.size() - 1)); // lastOffsetDelta
  body.be<std::int64_t>(now);                                          // firstTimestamp
  body.be<std::int64_t>(now);                                          // maxTimestamp
  body.be<std::int64_t>(-1);                                           // producerId
  body.be<std::int16_t>(-1);                                           // producerEpoch
  body.be<std::int32_t>(-1);                                           // baseSequence
  body.be<std::int32_t>(static_cast<std::int32_t>(values.size()));     // records
  for (std::size_t i = 0; i < values.size(); ++i) {
    writer rec;
    rec.out.push_back(0); // attributes
    rec.varint(0);        // timestampDelta
    rec.varint(static_cast<std::int64_t>(i));
    rec.varint(-1); // null key
    rec.varint(static_cast<std::int64_t>(values[i].size()));
    rec.out += values[i];
    rec.varint(0); // headers
    body.varint(static_cast<std::int64_t>(rec.out.size()));
    body.out += rec.out;
  }
  writer batch;
  batch.be<std::int64_t>(0); // baseOffset, assigned by the broker
  batch.be<std::int32_t>(static_cast<std::int32_t>(4 + 1 + 4 + body.out.size()));
  batch.be<std::int32_t>(0);           // partitionLeaderEpoch
  batch.out.push_back(2);              // magic
  batch.be<std::uint32_t>(0xdeadbeef); // a CRC32C that cannot match
  batch.out += body.out;
  return batch.out;
}

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    auto n = ::send(fd, data.data() + sent, data.size() - sent, 0);
    if (n <= 0) throw std::runtime_error("raw produce: send failed");
    sent += static_cast<std::size_t>(n);
  }
}

std::string recv_exact(int fd, std::size_t size) {
  std::string data(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    auto n = ::recv(fd, data.data() + got, size - got, 0);
    if (n <= 0) throw std::runtime_error("raw produce: connection closed");
    got += static_cast<std::size_t>(n);
  }
  return data;
}

template <class T>
T read_be(const std::string& s, std::size_t& at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v = (v << 8) | static_cast<unsigned char>(s.at(at + i));
  at += sizeof(T);
  return static_cast<T>(v);
}

} // namespace

std::int64_t produce_corrupt_batch(const std::string& broker, const std::string& topic,
                                   std::int32_t partition,
                                   const std::vector<std::string>& values) {
  auto colon = broker.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(broker.substr(colon + 1))));
  if (inet_pton(AF_INET, broker.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    throw std::runtime_error("raw produce: bad address " + broker);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("raw produce: cannot connect to " + broker);
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};

  writer req;
  req.be<std::int16_t>(0); // Produce
  req.be<std::int16_t>(3);
  req.be<std::int32_t>(1); // correlation id
  req.str("sluice-test");
  req.be<std::int16_t>(-1); // no transactional id
  req.be<std::int16_t>(1);  // acks
  req.be<std::int32_t>(5000);
  req.be<std::int32_t>(1);
  req.str(topic);
  req.be<std::int32_t>(1);
  req.be<std::int32_t>(partition);
  auto batch = record_batch(values);
  req.be<std::int32_t>(static_cast<std::int32_t>(batch.size()));
  req.out += batch;
  writer frame;
  frame.be<std::int32_t>(static_cast<std::int32_t>(req.out.size()));
  send_all(fd, frame.out + req.out);

  std::size_t at = 0;
  auto size_bytes = recv_exact(fd, 4);
  auto size = read_be<std::int32_t>(size_bytes, at);
  auto resp = recv_exact(fd, static_cast<std::size_t>(size));
  at = 4 + 4; // correlation id, topic count (1)
  auto name_len = read_be<std::int16_t>(resp, at);
  at += static_cast<std::size_t>(name_len);
  at += 4; // partitions: 1
  at += 4; // partition
  auto error = read_be<std::int16_t>(resp, at);
  auto base_offset = read_be<std::int64_t>(resp, at);
  if (error != 0)
    throw std::runtime_error("raw produce: broker error " + std::to_string(error));
  return base_offset;
}

} // namespace sluice::testing

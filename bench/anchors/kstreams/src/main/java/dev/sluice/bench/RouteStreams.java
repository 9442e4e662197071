package dev.sluice.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;

/**
 * The bench's route pipeline as a Kafka Streams app: every value parsed as JSON and checked
 * against the order schema of Sluice's bench pipeline (the checks of bench/route_loop.py); a
 * valid record goes to the output as Sluice writes it (the schema's fields in its order,
 * compact JSON, the record's key, headers and timestamp), an invalid one to the DLQ as it was
 * read, with headers naming the reason and the source.
 *
 * <p>Kafka Streams has no bounded run: the app counts the records it handled and, once it has
 * --count, closes the streams (a clean close commits: the offsets, and under exactly_once_v2
 * the open transaction) and prints one JSON line: the first and last record's times and the
 * end of the close, in milliseconds since the epoch, for the bench to time. With --count 0 it
 * runs until SIGTERM (bench/latency_bench.py), then closes the same way; it prints
 * {"state":"RUNNING"} each time its threads start processing after a rebalance.
 *
 * <pre>
 * java -cp 'route-streams-1.jar:lib/*' dev.sluice.bench.RouteStreams --bootstrap B --app-id G
 *     --input T --output T --dlq T --count N [--guarantee at_least_once|exactly_once_v2]
 *     [--threads 2] [--commit-interval-ms MS] [--state-dir D] [--timeout-s 600]
 * (--count 0: continuous, until SIGTERM)
 * </pre>
 */
public final class RouteStreams {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String[] REQUIRED = {
    "order_id", "customer_id", "quantity", "price", "priority"
  };
  private static final String[][] SCHEMA = {
    {"order_id", "string"},
    {"customer_id", "string"},
    {"product_id", "string"},
    {"quantity", "int"},
    {"price", "double"},
    {"order_time", "timestamp"},
    {"priority", "string"}
  };

  /** A checked record: the output value, or the reason it goes to the DLQ. */
  record Checked(byte[] output, byte[] input, String errorType, String message) {
    boolean valid() {
      return output != null;
    }
  }

  private static boolean isTimestamp(String text) {
    try {
      OffsetDateTime.parse(text);
      return true;
    } catch (DateTimeParseException e) {
      try {
        LocalDateTime.parse(text);
        return true;
      } catch (DateTimeParseException e2) {
        return false;
      }
    }
  }

  private static boolean fits(JsonNode v, String type) {
    switch (type) {
      case "string":
        return v.isTextual();
      case "int":
        return v.isInt(); // an integral number within 32 bits
      case "double":
        return v.isNumber() && Double.isFinite(v.asDouble());
      case "timestamp":
        return v.isTextual() && isTimestamp(v.textValue());
      default:
        return false;
    }
  }

  static Checked check(byte[] value) {
    if (value == null || value.length == 0) {
      return new Checked(null, value, "empty_value", "the record has an empty or null value");
    }
    JsonNode doc;
    try {
      doc = JSON.readTree(value);
    } catch (Exception e) {
      return new Checked(null, value, "malformed_json", "the value is not valid JSON");
    }
    if (doc == null || !doc.isObject()) {
      return new Checked(null, value, "not_an_object", "expected a JSON object");
    }
    for (String name : REQUIRED) {
      JsonNode v = doc.get(name);
      if (v == null || v.isNull()) {
        return new Checked(null, value, "missing_field", "required field `" + name + "` is missing");
      }
    }
    ObjectNode out = JSON.createObjectNode();
    for (String[] field : SCHEMA) {
      JsonNode v = doc.get(field[0]);
      if (v == null || v.isNull()) {
        continue;
      }
      if (!fits(v, field[1])) {
        return new Checked(
            null, value, "wrong_type", "field `" + field[0] + "` should be " + field[1]);
      }
      out.set(field[0], v);
    }
    try {
      return new Checked(JSON.writeValueAsBytes(out), value, null, null);
    } catch (Exception e) {
      return new Checked(null, value, "unwritable", e.getMessage());
    }
  }

  /** Checks each value; an invalid record gets the DLQ's headers here, where its source is known. */
  static final class Check implements FixedKeyProcessor<byte[], byte[], Checked> {
    private final AtomicLong handled;
    private final AtomicLong firstMs;
    private final AtomicLong lastMs;
    private final long count;
    private final CountDownLatch done;
    private FixedKeyProcessorContext<byte[], Checked> context;

    Check(AtomicLong handled, AtomicLong firstMs, AtomicLong lastMs, long count,
        CountDownLatch done) {
      this.handled = handled;
      this.firstMs = firstMs;
      this.lastMs = lastMs;
      this.count = count;
      this.done = done;
    }

    @Override
    public void init(FixedKeyProcessorContext<byte[], Checked> context) {
      this.context = context;
    }

    @Override
    public void process(FixedKeyRecord<byte[], byte[]> record) {
      long now = System.currentTimeMillis();
      firstMs.compareAndSet(0, now);
      Checked checked = check(record.value());
      if (!checked.valid()) {
        var meta = context.recordMetadata().orElseThrow();
        var headers = record.headers();
        headers.add("sluice.error.type", checked.errorType().getBytes(StandardCharsets.UTF_8));
        headers.add("sluice.error.message", checked.message().getBytes(StandardCharsets.UTF_8));
        headers.add("sluice.source.topic", meta.topic().getBytes(StandardCharsets.UTF_8));
        headers.add("sluice.source.partition",
            Integer.toString(meta.partition()).getBytes(StandardCharsets.UTF_8));
        headers.add("sluice.source.offset",
            Long.toString(meta.offset()).getBytes(StandardCharsets.UTF_8));
      }
      context.forward(record.withValue(checked));
      if (handled.incrementAndGet() == count) {
        lastMs.set(now);
        done.countDown();
      }
    }
  }

  private static Map<String, String> parse(String[] argv) {
    var args = new java.util.HashMap<String, String>();
    for (int i = 0; i + 1 < argv.length; i += 2) {
      if (!argv[i].startsWith("--")) {
        throw new IllegalArgumentException("expected --name value, got " + argv[i]);
      }
      args.put(argv[i].substring(2), argv[i + 1]);
    }
    for (String name : new String[] {"bootstrap", "app-id", "input", "output", "dlq", "count"}) {
      if (!args.containsKey(name)) {
        throw new IllegalArgumentException("--" + name + " is required");
      }
    }
    return args;
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parse(argv);
    long count = Long.parseLong(args.get("count"));
    var handled = new AtomicLong();
    var firstMs = new AtomicLong();
    var lastMs = new AtomicLong();
    var done = new CountDownLatch(1);

    StreamsBuilder builder = new StreamsBuilder();
    KStream<byte[], Checked> checked =
        builder.stream(args.get("input"), Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .processValues(() -> new Check(handled, firstMs, lastMs, count, done));
    Produced<byte[], byte[]> bytes = Produced.with(Serdes.ByteArray(), Serdes.ByteArray());
    checked
        .split()
        .branch(
            (k, v) -> v.valid(),
            Branched.withConsumer(s -> s.mapValues(Checked::output).to(args.get("output"), bytes)))
        .defaultBranch(
            Branched.withConsumer(s -> s.mapValues(Checked::input).to(args.get("dlq"), bytes)));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("bootstrap"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        args.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.getOrDefault("threads", "2"));
    if (args.containsKey("commit-interval-ms")) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, args.get("commit-interval-ms"));
    }
    props.put(StreamsConfig.STATE_DIR_CONFIG,
        args.getOrDefault("state-dir", System.getProperty("java.io.tmpdir") + "/route-streams"));
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

    long startMs = System.currentTimeMillis();
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    var failed = new java.util.concurrent.atomic.AtomicReference<Throwable>();
    streams.setUncaughtExceptionHandler(e -> {
      failed.set(e);
      done.countDown();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
          .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) {
        System.out.println("{\"state\":\"RUNNING\"}");
        System.out.flush();
      }
    });
    // Continuous (--count 0): SIGTERM ends the wait; the JVM's exit waits for the close.
    var mainDone = new CountDownLatch(1);
    if (count == 0) {
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        done.countDown();
        try {
          mainDone.await(90, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }));
    }
    streams.start();
    long timeout = Long.parseLong(args.getOrDefault("timeout-s", "600"));
    boolean finished = done.await(timeout, TimeUnit.SECONDS);
    boolean closed = false;
    try {
      // Continuous: within the 30 s the bench gives a SIGTERMed process before SIGKILL.
      closed = streams.close(Duration.ofSeconds(count == 0 ? 20 : 60));
      long endMs = System.currentTimeMillis();
      System.out.printf(
          "{\"contestant\":\"kafka-streams\",\"records\":%d,\"start_ms\":%d,\"first_ms\":%d,"
              + "\"last_ms\":%d,\"closed_ms\":%d,\"closed\":%b,\"finished\":%b,\"error\":%s}%n",
          handled.get(), startMs, firstMs.get(), lastMs.get(), endMs, closed, finished,
          failed.get() == null ? "null" : JSON.writeValueAsString(failed.get().toString()));
      System.out.flush();
    } finally {
      if (count == 0) {
        // SIGTERM's status (143) says it ran until stopped and closed; anything else
        // (it failed, timed out, or did not close) is 1. halt: exit would wait for the
        // shutdown hook, which waits for this thread.
        if (!finished || !closed || failed.get() != null) Runtime.getRuntime().halt(1);
        mainDone.countDown();
      }
    }
    if (count == 0) return;
    System.exit(finished && closed && failed.get() == null ? 0 : 1);
  }
}

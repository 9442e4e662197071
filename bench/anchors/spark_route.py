"""The seed's pipeline in Spark Structured Streaming: the bench's Spark anchor.

    SPARK_PYTHON bench/anchors/spark_route.py --bootstrap B --input T --output T --dlq T
        --checkpoint DIR --jars DIR [--cores 2] [--max-offsets N]

pyspark in local mode on --cores cores; Spark's own Kafka source and sink (the connector's
jars from --jars, resolved by bench/anchors/fetch.sh; those pyspark already carries are left
out); `from_json` with the order schema; `trigger(availableNow=True)` (read up to the end
offsets at start, then stop); a checkpoint directory. Each micro-batch goes through
`foreachBatch`, as the seed does: the valid records (a JSON object whose required fields
are present and of their types: from_json makes a wrongly typed field null) are written with
the `topic` column naming each record's topic, the rest go to the DLQ topic as they were
read, with a header naming the reason. Spark commits nothing to a consumer group
(SPARK-27549): where it stands is in the checkpoint.

Prints one JSON line at the end, times in ms since the epoch: start_ms (the interpreter
started), session_ms (the SparkSession is up), first_ms (the first non-empty micro-batch
began: its records are read from Kafka inside it), last_ms (the last one's writes ended),
end_ms (the query stopped), records (numInputRows summed over the progress), batches,
jvm_cpu_s and jvm_peak_rss_kb (Spark's JVM, a child process GNU time does not count).
"""
import argparse
import glob
import json
import os
import re
import sys
import time

START_MS = int(time.time() * 1000)

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.types import (DoubleType, IntegerType, StringType, StructField,  # noqa: E402
                               StructType, TimestampType)

ORDER = StructType([
    StructField("order_id", StringType()),
    StructField("customer_id", StringType()),
    StructField("product_id", StringType()),
    StructField("quantity", IntegerType()),
    StructField("price", DoubleType()),
    StructField("order_time", TimestampType()),
    StructField("priority", StringType()),
])
REQUIRED = ["order_id", "customer_id", "quantity", "price", "priority"]


def connector_jars(folder):
    """The connector's jars that pyspark does not carry already (by artifact name: two
    versions of one library on the class path is trouble)."""
    import pyspark
    have = {re.sub(r"-[0-9][^-]*\.jar$", "", os.path.basename(j))
            for j in glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "*.jar"))}
    jars = [j for j in sorted(glob.glob(os.path.join(folder, "*.jar")))
            if re.sub(r"-[0-9][^-]*\.jar$", "", os.path.basename(j)) not in have]
    if not any("spark-sql-kafka" in j for j in jars):
        sys.exit("spark_route.py: no spark-sql-kafka jar in %s (run bench/anchors/fetch.sh)"
                 % folder)
    return jars


def jvm_usage():
    """(CPU seconds, peak RSS KiB) of Spark's JVM, a child of this process that nobody
    waits for: GNU time around this script counts only the Python side."""
    hz = os.sysconf("SC_CLK_TCK")
    cpu, peak = 0.0, 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != os.getpid():  # ppid
                continue
            cpu += (int(fields[11]) + int(fields[12])) / hz  # utime, stime
            with open("/proc/%s/status" % pid) as f:
                peak += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        except (OSError, IndexError, ValueError, StopIteration):
            pass
    return cpu, peak


def main():
    ap = argparse.ArgumentParser()
    for name in ("bootstrap", "input", "output", "dlq", "checkpoint", "jars"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--max-offsets", type=int, help="maxOffsetsPerTrigger")
    args = ap.parse_args()

    spark = (SparkSession.builder.master("local[%d]" % args.cores)
             .appName("sluice-bench-spark")
             .config("spark.jars", ",".join(connector_jars(args.jars)))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(args.cores))
             .config("spark.driver.memory", "2g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    session_ms = int(time.time() * 1000)

    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap)
              .option("subscribe", args.input)
              .option("startingOffsets", "earliest")
              .option("includeHeaders", "true"))
    if args.max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", args.max_offsets)
    parsed = reader.load().select(
        "key", "value", "headers",
        F.from_json(F.col("value").cast("string"), ORDER).alias("order"))
    valid = F.col("order").isNotNull()
    for name in REQUIRED:
        valid = valid & F.col("order." + name).isNotNull()
    marks = {"first": 0, "last": 0}

    def write_batch(batch, batch_id):
        began = int(time.time() * 1000)
        batch = batch.withColumn("valid", valid).persist()
        out = batch.where("valid").select(
            "key", F.to_json("order").alias("value"), "headers",
            F.lit(args.output).alias("topic"))  # the route: a topic per record
        (out.write.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
         .option("kafka.linger.ms", "5").save())
        reason = F.struct(F.lit("sluice.error.type").alias("key"),
                          F.lit("invalid").cast("binary").alias("value"))
        dlq = batch.where("not valid").select(
            "key", "value",
            F.concat(F.coalesce("headers", F.array().cast(batch.schema["headers"].dataType)),
                     F.array(reason)).alias("headers"),
            F.lit(args.dlq).alias("topic"))
        (dlq.write.format("kafka").option("kafka.bootstrap.servers", args.bootstrap).save())
        batch.unpersist()
        if not marks["first"]:
            marks["first"] = began
        marks["last"] = int(time.time() * 1000)

    query = (parsed.writeStream.foreachBatch(write_batch)
             .option("checkpointLocation", args.checkpoint)
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()
    end_ms = int(time.time() * 1000)
    progress = query.recentProgress
    records = sum(p["numInputRows"] for p in progress)
    spark.stop()  # the JVM stays until Python exits: its stop is counted below
    jvm = jvm_usage()
    print(json.dumps({"contestant": "spark", "records": records, "start_ms": START_MS,
                      "session_ms": session_ms, "first_ms": marks["first"],
                      "last_ms": marks["last"], "end_ms": end_ms,
                      "batches": sum(1 for p in progress if p["numInputRows"]),
                      "jvm_cpu_s": jvm[0], "jvm_peak_rss_kb": jvm[1]}), flush=True)


if __name__ == "__main__":
    main()

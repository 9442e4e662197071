#pragma once

// Everything an app needs to build and run pipelines (no CAF, no librdkafka).

#include <sluice/builder.hpp>
#include <sluice/config.hpp>
#include <sluice/errors.hpp>
#include <sluice/logging.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/plan.hpp>
#include <sluice/progress.hpp>
#include <sluice/record.hpp>
#include <sluice/row.hpp>
#include <sluice/stage.hpp>
#include <sluice/version.hpp>
#include <sluice/writer.hpp>

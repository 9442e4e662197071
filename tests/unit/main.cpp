#define BOOST_TEST_MODULE sluice_unit
#include <boost/test/unit_test.hpp>

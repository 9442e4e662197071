#define BOOST_TEST_MODULE sluice_integration
#include <boost/test/unit_test.hpp>

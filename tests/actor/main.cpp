#define BOOST_TEST_MODULE sluice_actor
#include <boost/test/unit_test.hpp>

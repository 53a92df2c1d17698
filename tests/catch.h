// tests/catch.h: one include for Catch2 v2 (Debian 12) and v3 (the GPU image).
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif

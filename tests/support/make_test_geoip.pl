#!/usr/bin/perl
# Writes a small MaxMind DB (the format of GeoIP2/GeoLite2 Country) for tests.
#
#   make_test_geoip.pl OUT.mmdb NETWORKS.txt [DATABASE_TYPE]
#
# Each line of NETWORKS.txt ("-": standard input) is "CIDR COUNTRY" (e.g. "192.0.2.0/24 FR", "2001:db8::/32
# DE"); blank lines and lines starting with '#' are skipped. Records are
# {country => {iso_code => COUNTRY}, registered_country => {iso_code =>
# COUNTRY}}; COUNTRY "-" stores a record without any country (an address that
# is in the database but has no country) and "registered:XX" one with only
# registered_country (as for some anycast and satellite networks). DATABASE_TYPE defaults to
# "GeoIP2-Country"; with a type containing "ASN" the records are
# {autonomous_system_number => 64496} instead (a database without country
# data). The tree is IPv6 with IPv4 mapped (::a.b.c.d, ::ffff:a.b.c.d and
# 2002::/16 all reach the IPv4 data), record size 28, reserved networks kept
# (tests use documentation and private ranges). Needs
# libmaxmind-db-writer-perl.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my ($out, $in, $type) = @ARGV;
die "usage: $0 OUT.mmdb NETWORKS.txt [DATABASE_TYPE]  (lines 'CIDR COUNTRY')\n"
  unless defined $out && defined $in;
$type = 'GeoIP2-Country' unless defined $type && length $type;
my $asn = $type =~ /ASN/i;

my %types = (
  country                  => 'map',
  registered_country       => 'map',
  iso_code                 => 'utf8_string',
  autonomous_system_number => 'uint32',
);

my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version               => 6,
  record_size              => 28,
  database_type            => $type,
  languages                => ['en'],
  description              => { en => 'earshot test database' },
  alias_ipv6_to_ipv4       => 1,
  remove_reserved_networks => 0,
  map_key_type_callback    => sub { $types{ $_[0] } },
);

my $input = \*STDIN;
if ($in ne '-') {
  open $input, '<', $in or die "cannot read $in: $!\n";
}
my $n = 0;
while (my $line = <$input>) {
  $line =~ s/^\s+|\s+$//g;
  next if $line eq '' || $line =~ /^#/;
  my ($cidr, $country) = split /\s+/, $line;
  die "line $.: expected 'CIDR COUNTRY', got '$line'\n" unless defined $country;
  my $record;
  if ($asn) {
    $record = { autonomous_system_number => 64496 };
  } elsif ($country eq '-') {
    $record = {};
  } elsif ($country =~ /^registered:(.+)$/) {
    $record = { registered_country => { iso_code => $1 } };
  } else {
    $record = { country => { iso_code => $country }, registered_country => { iso_code => $country } };
  }
  $tree->insert_network($cidr, $record);
  ++$n;
}

open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write $out: $!\n";
print STDERR "wrote $n networks to $out\n";

package humanize

import "testing"

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 123456: "123,456", 1234567: "1,234,567", -1234: "-1,234", -999: "-999"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 1500: "1.5 kB", 99999: "100.0 kB", 1_234_567: "1.2 MB",
		999_949: "999.9 kB", 999_950: "1.0 MB", 5 << 30: "5.4 GB", 12_345_678_901: "12.3 GB", 1 << 40: "1.1 TB", 3e18: "3000.0 PB", -1500: "-1.5 kB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The JVM's twin of bench/src/preempt/stw.pir and `peers stw`: N
// System.gc() calls while K threads spin in loops with no call. Run with
// -Xlog:safepoint; the harness reads "Reaching safepoint: T ns" (HotSpot's
// time from the safepoint request to every thread stopped, the span Go's
// /sched/pauses/stopping/gc measures) from each GC safepoint's line.
//
//   java -Xlog:safepoint -XX:ActiveProcessorCount=2 Stw.java K N
public final class Stw {
    static volatile boolean stop;
    static volatile int started;
    static volatile long sink;

    public static void main(String[] args) throws Exception {
        int k = Integer.parseInt(args[0]);
        int n = Integer.parseInt(args[1]);
        Thread[] spinners = new Thread[k];
        for (int i = 0; i < k; i++) {
            spinners[i] = new Thread(() -> {
                synchronized (Stw.class) {
                    started++;
                }
                long x = 1;
                while (!stop) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                }
                sink = x;
            });
            spinners[i].setDaemon(true);
            spinners[i].start();
        }
        while (started < k) {
            Thread.onSpinWait();
        }
        // Let the spinners' loops be compiled (C2) before measuring.
        Thread.sleep(500);
        System.out.println("stw-begin");
        for (int i = 0; i < n; i++) {
            System.gc();
        }
        System.out.println("stw-end");
        stop = true;
    }
}

import sys, time, signal, threading
sys.path.insert(0, "/tmp/rv")
import srv
srv.ENV["AWS_ENDPOINT_URL"] = "http://127.0.0.1:62418"
from srv import *
import boto3
c2 = boto3.client("s3", endpoint_url="http://127.0.0.1:62418", aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
c2.create_bucket(Bucket="review-bucket")
data = "s3://review-bucket/o"
mpid = int(open("/tmp/rv/moto2.pid").read())
w = Srv(data, ttl=6000); c = w.connect()
print(q(c, "CREATE TABLE t(i INT)"), q(c, "INSERT INTO t VALUES (1)"))
os.kill(mpid, signal.SIGSTOP)
t0 = time.time()
res = {}
def ins(): res["ins"] = q(c, "INSERT INTO t VALUES (2)"); res["ins_t"] = time.time() - t0
def sel(): 
    c3 = w.connect(); res["sel"] = q(c3, "SELECT count(*) FROM t"); res["sel_t"] = time.time() - t0
threading.Thread(target=ins).start(); time.sleep(1); threading.Thread(target=sel).start()
time.sleep(int(sys.argv[1]))
print("during outage after", sys.argv[1], "s:", res)
os.kill(mpid, signal.SIGCONT)
time.sleep(5)
print("after resume:", res)
print("after: insert 3 ->", q(c, "INSERT INTO t VALUES (3)"))
print("after: select ->", q(c, "SELECT * FROM t"))
w.stop()
print(w.log()[-1500:])
time.sleep(7)
print("reopen:", sql(data, "SELECT * FROM t", ttl=6000))

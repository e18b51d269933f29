"""Drives eCircle's SOAP API with zeep loading our ecm.wsdl, as a Python
integration would, in two phases around the Rust test (which waits for the
mail, opens it and ages a session in between). Prints one JSON object.

usage: zeep_ecircle.py first WSDL REALM USER PASSWORD EMAIL GROUP MESSAGE
       zeep_ecircle.py second WSDL REALM USER PASSWORD EMAIL GROUP MESSAGE SESSION EXPIRED
"""
import datetime
import json
import sys

import zeep

RPCNS = "{http://webservices.ecircleag.com/rpcns}"
phase, wsdl, realm, user, password, email, group, message = sys.argv[1:9]
service = zeep.Client(wsdl).service


def fault_of(call):
    """The EcMException a call raises: its code, detail message and faultstring."""
    try:
        call()
    except zeep.exceptions.Fault as fault:
        detail = fault.detail.find(f"{RPCNS}fault")
        return {
            "code": int(detail.find(f"{RPCNS}code").text),
            "errorMessage": detail.find(f"{RPCNS}errorMessage").text,
            "faultstring": fault.message,
        }
    return None


result = {}
if phase == "first":
    session = service.logon(realm=realm, user=user, passwd=password)
    result["session"] = session
    result["expiring"] = service.logon(realm=realm, user=user, passwd=password)
    user_xml = (
        f"<user><email>{email}</email><firstname>Zoe</firstname>"
        '<namedattr name="customerNo">Z-42</namedattr><namedattr name="tier">gold</namedattr></user>'
    )
    result["user_id"] = service.createOrUpdateUserByEmail(session=session, userXml=user_xml, sendMessage=False)
    result["member_id"] = service.subscribeMemberByEmail(session=session, email=email, groupId=group, sendMessage=False)
    result["member"] = service.lookupMemberByEmail(session=session, groupId=group, email=email)
    result["sent"] = service.sendParametrizedSingleMessageToUser(
        session=session,
        singleMessageId=message,
        userId=result["user_id"],
        names=["SUBJECT", "MSG_BODY"],
        values=["Your code from zeep", "Code <b>Z-1234</b>"],
    )
else:
    session, expired = sys.argv[9:11]
    infos = service.lookupMessages(session=session, lookupParams={"messageId": message})
    result["messages"] = [
        {k: infos[0][k] for k in ("id", "type", "recipientCount", "actualRecipientCount", "readerCount", "openRate")}
    ] if infos else []
    hours = service.lookupHourlyMessageStats(
        session=session,
        messageid=message,
        periodStartDate=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1),
        periodEndDate=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1),
    )
    result["hourly_openings"] = sum(h["noOfOpenings"] for h in hours)
    now = datetime.datetime.now(datetime.timezone.utc)
    in_range = service.lookupMessages(
        session=session,
        lookupParams={
            "messageId": message,
            "messageSendDateFrom": now - datetime.timedelta(days=1),
            "messageSendDateTo": now + datetime.timedelta(days=1),
            "sortProperty": "sendDate",
            "sortAscending": False,
        },
    )
    result["sent_in_range"] = [i["id"] for i in in_range or []]
    later = service.lookupMessages(
        session=session, lookupParams={"messageId": message, "messageCreationDateFrom": now + datetime.timedelta(days=1)}
    )
    result["created_later"] = len(later or [])
    # None goes out as xsi:nil: those settings stay as they are.
    service.changeGroupSettings(
        session=session,
        groupId=group,
        description="Set by zeep",
        prefix="[zeep]",
        textFooter=None,
        textHeader=None,
        htmlFooter=None,
        htmlHeader="<p>zeep</p>",
    )
    result["unsubscribed"] = service.unsubscribeMemberByEmail(session=session, email=email, groupId=group, sendMessage=False)
    result["member_after"] = service.lookupMemberByEmail(session=session, groupId=group, email=email)
    result["logout"] = service.logout(session=session)
    result["after_logout"] = fault_of(lambda: service.lookupUserByEmail(session=session, email=email))
    result["expired"] = fault_of(lambda: service.lookupUserByEmail(session=expired, email=email))
    result["wrong_password"] = fault_of(lambda: service.logon(realm=realm, user=user, passwd="wrong"))
print(json.dumps(result))
